"""The report builds within the page limit and quotes only numbers the notebook wrote; reflections fit."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from count_words import LIMIT, count_words  # noqa: E402

REPORT, FIGURES = ROOT / "report", ROOT / "figures"
TEX = (REPORT / "report.tex").read_text()
RESULTS = json.loads((FIGURES / "results.json").read_text())


def defined_macros():
    text = (REPORT / "results.tex").read_text()
    return dict(re.findall(r"\\newcommand\{\\(\w+)\}\{(.*)\}", text))


def test_committed_results_come_from_a_real_run_not_a_smoke_run():
    assert RESULTS["config"]["profile"] in ("cpu", "full")
    assert RESULTS["device"] and RESULTS["timings"]["total_s"] > 0 and RESULTS["train"]["steps_done"] > 0


def test_committed_results_come_from_one_fresh_run_not_a_resumed_one():
    """Timings and training speed describe one session only when nothing was resumed."""
    train = RESULTS["train"]
    assert train["resumed"] is False and train["steps_this_run"] == train["steps_done"]


def test_every_results_macro_the_report_uses_is_defined():
    used = set(re.findall(r"\\(Res[A-Za-z]+)", TEX))
    assert used, "the report quotes no measured number"
    assert used <= defined_macros().keys(), used - defined_macros().keys()


def test_results_tex_agrees_with_results_json(nb):
    macros = defined_macros()
    assert macros.keys() == RESULTS["macros"].keys()
    for name, spec in RESULTS["macros"].items():
        assert macros[name] == spec["value"], name
        try:
            value = nb.lookup(RESULTS, spec["source"])      # the notebook's own resolver
        except (KeyError, TypeError):
            value = None
        if value is None:                                       # not measured in this run
            assert spec["value"] == "n/a", (name, spec["value"])
            continue
        shown = spec["value"].replace("\\", "")                  # undo the LaTeX escapes
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown = shown.replace(",", "")                      # thousands separators
            decimals = len(shown.split(".")[1]) if "." in shown else 0
            assert abs(float(shown) - value) <= 0.5 * 10 ** -decimals + 1e-9, (name, shown, value)
        else:
            assert shown == str(value), (name, shown, value)


def test_every_included_figure_exists():
    names = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", TEX)
    assert names
    for name in names:
        assert any((FIGURES / f"{name}{ext}").is_file() for ext in ("", ".pdf", ".png")), name


@pytest.fixture(scope="module")
def built_pdf(tmp_path_factory):
    if shutil.which("latexmk") is None or shutil.which("pdfinfo") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install latexmk and poppler-utils (see .ci/run)")
        pytest.skip("latexmk/pdfinfo not installed")
    work = tmp_path_factory.mktemp("build")
    shutil.copytree(REPORT, work / "report", ignore=shutil.ignore_patterns("*.pdf", "*.aux", "*.log", "*.fdb_latexmk", "*.fls"))
    shutil.copytree(FIGURES, work / "figures")
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                          cwd=work / "report", capture_output=True, text=True, errors="replace", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return work / "report" / "report.pdf"


def test_report_builds_to_at_most_four_pages(built_pdf):
    info = subprocess.run(["pdfinfo", str(built_pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert 1 <= pages <= 4, pages


def test_report_has_no_undefined_references(built_pdf):
    log = built_pdf.with_suffix(".log").read_text(errors="replace")
    assert not re.search(r"undefined (references|citations)|(Reference|Citation) `[^']*' on page \d+ undefined", log), \
        re.findall(r".*undefined.*", log)[:5]


@pytest.mark.parametrize("member", ["a", "b", "c"])
def test_reflection_is_within_the_word_limit(member):
    assert count_words((ROOT / "reflections" / f"member_{member}.md").read_text()) <= LIMIT


def test_word_count_ignores_markdown_syntax_and_counts_prose():
    text = "# Heading words here\n<!-- guidance that does not count -->\n**Bold** text, a [link](http://x.y) - and 3 items.\n"
    assert count_words(text) == 7          # Bold text, a link and 3 items.
    assert count_words("word " * (LIMIT + 1)) > LIMIT


COMMITTED_PDF = REPORT / "report.pdf"


def pdf_tool(*args):
    if shutil.which(args[0]) is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install poppler-utils (see .ci/run)")
        pytest.skip(f"{args[0]} not installed")
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def test_committed_pdf_has_at_most_four_pages():
    assert COMMITTED_PDF.is_file(), "build it with `make report` and commit report/report.pdf"
    pages = int(re.search(r"Pages:\s+(\d+)", pdf_tool("pdfinfo", str(COMMITTED_PDF))).group(1))
    assert 1 <= pages <= 4, pages


def test_committed_pdf_quotes_the_current_results():
    """The PDF was rebuilt after the last run: every measured number the report uses appears in its text."""
    text = re.sub(r"\s+", "", pdf_tool("pdftotext", "-enc", "UTF-8", str(COMMITTED_PDF), "-"))
    macros = defined_macros()
    missing = [name for name in sorted(set(re.findall(r"\\(Res[A-Za-z]+)", TEX)))
               if re.sub(r"\s+", "", macros[name].replace("\\", "")) not in text]
    assert not missing, {name: macros[name] for name in missing}
