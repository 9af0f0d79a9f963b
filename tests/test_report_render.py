"""The validation report a business owner sends a client, read back the way the client gets
it: the PDF's text (pypdf), a page rasterised (pdftoppm), and the HTML share page."""
from __future__ import annotations

import io
import re
import shutil
import subprocess

import pypdf
import pytest
from PIL import Image
from pydantic import ValidationError

from control.services.report import ReportContext, render_html, render_pdf
from shared.evaluation import measures
from tests.report_fixture import EXAMPLES, JOB_ID, PARTS, SHA256, sample_context

PDF_URL = "https://reports.example/r/abc123/report.pdf"
SVG_NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def _words(text: str) -> str:
    return " ".join(text.split())


def _pages(pdf: bytes) -> list[str]:
    return [_words(page.extract_text()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_pdf(sample_context())


@pytest.fixture(scope="module")
def pages(pdf) -> list[str]:
    return _pages(pdf)


@pytest.fixture(scope="module")
def text(pages) -> str:
    return " ".join(pages)


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(sample_context(), pdf_url=PDF_URL)


def _awaiting_review() -> ReportContext:
    """The fixture before anyone reviewed: people's measures wait, no decision, no judge."""
    dumps = [m.model_dump(mode="json") for m in measures.all_measures(PARTS)]
    return sample_context(
        measures=dumps, reviews={"rubric_name": "Harbor Lane brand voice"},
        gate={"verdict": "waiting_for_review",
              "reason": "Emotional intelligence and brand voice wait for people's scores.",
              "items": [{"id": m["id"], "name": m["name"], "status": m["status"],
                         "value_text": {"perplexity": "34.9% lower", "forgetting": "97.6% kept"}.get(m["id"]),
                         "target_text": m["target_text"]} for m in dumps if m["target"] is not None]})


# ---------------------------------------------------------------------- the PDF's text
def test_the_pdf_is_a_small_a4_document_with_a_cover_first(pdf, pages):
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 8
    assert {(round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in reader.pages} == {(595, 842)}
    assert len(pdf) < 1_000_000
    assert "VALIDATION REPORT Harbor Lane adviser voice" in pages[0]
    assert "Page 1 of" not in pages[0]                 # the cover has no footer


def test_every_page_after_the_cover_names_the_job_the_date_and_its_number(pages):
    for number, page in enumerate(pages[1:], start=2):
        assert f"Job {JOB_ID} · generated 1 December 2026" in page
        assert f"Page {number} of {len(pages)}" in page


def test_the_executive_summary_says_in_plain_words_whether_it_is_ready(pages):
    summary = pages[1]
    assert "1 Executive summary" in summary
    assert "Approved for delivery" in summary and "This adapter is ready for delivery." in summary
    assert "Approved by qa@harborlane.example on 30 Nov 2026, 10:42 UTC" in summary
    assert "on 420 conversations (1,583 replies to learn from) in harbor-lane-conversations-2026-11.json" in summary
    assert "84 of the conversations (20%) were held back from training" in summary
    assert "People scoring blind rated the adapter's answers to 50 emotionally difficult client situations " \
           "45.1% better than the base model's" in summary


@pytest.mark.parametrize("measure_id, figures", [
    ("perplexity", ["9.84 → 6.41", "34.9% lower, 95% interval [28.2%, 38.5%]", "n = 84 held-out conversations"]),
    ("emotional_intelligence", ["2.84 → 4.12", "45.1% better, 95% interval [36.9%, 53.8%]", "n = 50 scenarios"]),
    ("forgetting", ["82.0% → 80.0%", "97.6% of the base model's accuracy kept", "n = 100 questions"]),
    ("brand_voice", ["adapter 4.38", "n = 30 answers"]),
    ("reference_similarity", ["0.412 → 0.538", "95% interval [66.0%, 81.0%]", "n = 120 held-out turns"]),
    ("judge", ["72.5% of pairs won by the adapter", "95% interval [64.0%, 80.0%]", "n = 100 pairs"]),
])
def test_every_measure_shows_its_name_its_target_and_its_value_with_interval_and_n(text, measure_id, figures):
    m = next(m for m in sample_context().measures if m.id == measure_id)
    assert m.name in text
    assert (f"Target: {_words(m.target_text)}" if m.target_text else "None: a supporting figure") in text
    for figure in figures:
        assert figure in text


def test_at_least_three_before_after_examples_show_the_clients_message_and_both_answers(text):
    assert "4 Before and after" in text
    for example in EXAMPLES:
        assert _words(example["prompt"]) in text
        assert _words(example["base"]) in text and _words(example["adapter"]) in text
    assert len(re.findall(r"EXAMPLE \d · ", text)) >= 3


def test_an_example_where_the_base_model_won_is_shown_and_labelled_so(text):
    lost = next(e for e in EXAMPLES if e["winner"] == "base")
    assert "1 where the base model's answer was preferred" in text
    label_at = text.index("The base model's answer was preferred")
    assert text.index(lost["title"]) < label_at < text.index(_words(lost["prompt"]))


def test_the_appendix_has_the_configuration_data_hardware_cost_attempts_and_versions(text):
    appendix = text[text.index("5 Technical appendix"):]
    assert SHA256 in appendix.replace(" ", "")
    for expected in ["lora_r 16", "learning_rate 0.0002", "target_modules q_proj, k_proj", "brightrun-lora-v4",
                     "Training conversations 336", "Held-out conversations 84 (20.0%)",
                     "NVIDIA A100 80GB PCIe (spot)", "Duration 49 min", "Cost estimate $1.42", "Actual cost $1.31",
                     "Interrupted 1 time", "interrupted: spot instance reclaimed at step 23",
                     "transformers 5.1.0", "peft 0.17.1", "Rejected qa@harborlane.example"]:
        assert expected in appendix, expected


def test_the_first_page_rasterises_to_a_picture(pdf, tmp_path):
    assert shutil.which("pdftoppm"), "pdftoppm is missing: apt-get install poppler-utils"
    (tmp_path / "report.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(tmp_path / "report.pdf"),
                    str(tmp_path / "page")], check=True, timeout=60)
    [png] = tmp_path.glob("page*.png")
    image = Image.open(png).convert("RGB")
    assert abs(image.size[0] - 496) <= 1 and abs(image.size[1] - 702) <= 1   # A4 at 60 dpi
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50   # a designed page, not a blank


# ---------------------------------------------------------------------- the share page
def test_the_html_page_fetches_nothing_and_carries_its_charts_inline(html):
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls - SVG_NAMESPACES == {PDF_URL}
    assert f'href="{PDF_URL}"' in html and "Download the PDF" in html
    assert not re.search(r"<(script|link|img|iframe)\b|@import|url\((?!#)", html)   # url(#id): in the SVG
    assert html.count("<svg") == 4
    for chart in ("targets", "brand", "forgetting", "loss"):
        assert f'class="chart chart-{chart}"' in html


def test_a_pdf_rendering_has_no_link_to_itself():
    assert "Download the PDF" not in render_html(sample_context())


def test_the_clients_text_is_shown_as_text_never_as_markup():
    hostile = "<script>alert('x')</script> Is $5,000 & <b>more</b> enough?"
    html = render_html(sample_context(examples=[EXAMPLES[0] | {"prompt": hostile}]))   # the PDF's source
    assert "<script>" not in html and "<b>more</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Is $5,000 &amp; &lt;b&gt;more&lt;/b&gt; enough?" in html


# ---------------------------------------------------------------------- reports with less in them
def test_a_report_before_any_review_says_it_awaits_review_without_crashing():
    pdf_text = " ".join(_pages(render_pdf(_awaiting_review())))
    assert "Awaiting review" in pdf_text
    assert "This adapter is not ready for delivery yet: it waits for people's review." in pdf_text
    assert "People have not yet scored the answers to the emotionally difficult client situations" in pdf_text
    assert "No one has approved or rejected this adapter for delivery yet." in pdf_text
    assert "No chart of brand voice by characteristic: people have not scored" in pdf_text
    assert "No delivery decision has been made yet." in pdf_text
    assert "waiting for people's scores" in pdf_text        # in the targets chart's rows


def test_a_report_without_examples_metrics_or_forgetting_check_says_why_each_is_missing():
    ctx = sample_context(examples=[], metrics=[], forgetting=None, evaluation={})
    pdf_text = " ".join(_pages(render_pdf(ctx)))
    assert "No before/after examples: this evaluation generated no answers to compare." in pdf_text
    assert "No chart of training and validation loss: this job recorded no training metrics." in pdf_text
    assert "No chart of forgetting by topic: this evaluation did not run the forgetting check." in pdf_text


@pytest.mark.parametrize("change, where", [
    ({"dataset": {"sha256": "abc"}}, "dataset.sha256"),
    ({"generated_at": "yesterday"}, "generated_at"),
    ({"gate": {"verdict": "maybe", "reason": "?"}}, "gate.verdict"),
])
def test_a_context_with_a_bad_value_is_refused_naming_the_field(change, where):
    data = sample_context().model_dump(mode="json")
    for key, value in change.items():
        data[key] = data[key] | value if isinstance(value, dict) else value
    with pytest.raises(ValidationError) as caught:
        ReportContext.model_validate(data)
    assert where in str(caught.value)
