"""The evaluating stage: base model (the adapter off) against the adapter, part by part.

- ``perplexity``: held-out perplexity per conversation, the improvement's 95% interval, and
  the validation loss measured during training;
- ``generation``: both models' answers, batched, left-padded, greedy, with the KV cache;
- ``prompts``: the suites' prompts (held-out turns, the emotional-intelligence scenarios,
  the customer's prompts), sampled by size;
- ``forgetting``: the financial-knowledge questions, scored by the option letters' likelihood;
- ``similarity``: each answer's cosine similarity to the reference reply;
- ``suite``: the parts in order, each stored as it finishes, so a lost worker resumes the rest.
"""
