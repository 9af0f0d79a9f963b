"""The training worker: the recipe, and the RunPod Serverless handler that runs it."""
