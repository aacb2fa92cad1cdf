"""The report is true for whatever run wrote results.json: it builds within the page limit from the macros
the notebook's `write_results` computes, for the committed run, a full GPU run (with each verdict one way,
then the other) and a run without FID, and each PDF says what its run implies (checked on the PDF's text,
not on the LaTeX source). Reflections fit their word limit."""
import copy
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
TEX_CODE = re.sub(r"(?<!\\)%.*", "", TEX)          # without comments
RESULTS = json.loads((FIGURES / "results.json").read_text())
FID_SKIP_REASON = "torchmetrics is not installed (add it with: pip install torchmetrics)"


def macros_in(results_tex):
    return set(re.findall(r"\\newcommand\{\\(\w+)\}", results_tex))


def written_results_tex(nb, results, tmp_path):
    """What the notebook's write_results writes to results.tex for `results`."""
    out_dir, report_dir = tmp_path / "out", tmp_path / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    nb.write_results(copy.deepcopy(results), out_dir, report_dir)
    return (report_dir / "results.tex").read_text()


# --- four runs, as results dicts -----------------------------------------------------------------------------

def full_gpu_run():
    """The committed run as a `full` GPU run would have written it: DDIM-100 and DDIM-50 with eta = 1 drawn,
    the schedule ablation run (cosine ahead of linear by more than the spread), DDIM-50 within the spread of
    ancestral sampling, nothing skipped."""
    r = copy.deepcopy(RESULTS)
    r["device"] = "NVIDIA H100 80GB HBM3"
    r["config"].update(device="cuda", profile="full", ablation_steps=2000, ablation_n=1000,
                       ddim_steps=[10, 20, 50, 100])
    r["peak_gpu_memory_gb"] = 6.12
    r["total_minutes"] = r["timings"]["total_minutes"] = 19.6
    old = r["samplers"]
    anc = old["ancestral"]
    n, floor, spread = anc["fid_n"], anc["floor"], anc["spread"]
    for s in old.values():                      # every sampler scored at the ancestral N
        s.update(fid_n=n, floor=floor, spread=spread)
        s.pop("fid_at_ancestral_n", None)

    def ddim(steps, fid, eta=0.0, clip=True, seconds=1.0):
        return dict(kind="ddim", steps=steps, eta=eta, clip_sample=clip, fid=fid, fid_n=n, floor=floor,
                    spread=spread, seconds_per_1000=seconds)
    r["samplers"] = {
        "ancestral": anc,
        "ddim_10": dict(old["ddim_10"], eta=0.0),
        "ddim_20": dict(old["ddim_20"], eta=0.0),
        "ddim_50": dict(old["ddim_50"], eta=0.0, fid=anc["fid"] + spread / 3),   # within the spread
        "ddim_100": ddim(100, 38.9, seconds=2.5),
        "ddim_50_eta1": ddim(50, 47.9, eta=1.0, seconds=1.3),
        "ddim_50_noclip": dict(old["ddim_50_noclip"], eta=0.0),
    }
    r["ablation"] = {"linear": {"schedule": "linear", "fid": 52.4, "fid_n": n},
                     "cosine": {"schedule": "cosine", "fid": 47.1, "fid_n": n}}   # 5.3 apart: many spreads
    r["memorisation"].update(n=64, sample_median_l2=10.3, test_median_l2=9.8)
    r["skipped"] = {}
    return r


def full_run_with_other_verdicts():
    """The full run with every comparison going the other way: DDIM-50 ahead of ancestral, eta = 1 ahead
    of eta = 0, DDIM-10 ahead of DDIM-100 and level with real images, no clipping ahead, linear ahead of
    cosine, samples closer to the training set than test images."""
    r = full_gpu_run()
    s, floor, spread = r["samplers"], r["samplers"]["ancestral"]["floor"], r["samplers"]["ancestral"]["spread"]
    s["ddim_50"]["fid"], s["ddim_50_eta1"]["fid"], s["ddim_50_noclip"]["fid"] = floor + 8, floor + 3, floor + 1.5
    s["ancestral"]["fid"], s["ddim_100"]["fid"] = floor + 12, floor + 6          # all above the floor, by many spreads
    s["ddim_10"]["fid"] = floor + spread / 3
    r["ablation"]["linear"]["fid"], r["ablation"]["cosine"]["fid"] = 47.1, 52.4
    r["memorisation"].update(sample_median_l2=7.1, test_median_l2=9.8)
    return r


def run_without_fid():
    """The committed run as it would read without torchmetrics: no sampler scored, FID fields empty."""
    r = copy.deepcopy(RESULTS)
    for s in r["samplers"].values():
        s.update(fid=None, fid_n=0)
        for key in ("floor", "spread", "fid_at_ancestral_n"):
            s.pop(key, None)
    r["fid"] = {"weights": None, "n_generated": None, "smoke_only": False, "n_real": None, "floor": {}}
    r["skipped"] = dict(r.get("skipped") or {}, fid=FID_SKIP_REASON)
    return r


RUNS = {"committed": lambda: copy.deepcopy(RESULTS), "full": full_gpu_run, "flipped": full_run_with_other_verdicts,
        "nofid": run_without_fid}


# --- building the PDF ---------------------------------------------------------------------------------------

def need_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install {missing} (latexmk, TeX Live, poppler-utils; see .ci/run)")
        pytest.skip(f"{missing} not installed")


def build_report(nb, results, work):
    """Copy report/ and figures/ into `work`, write results.tex there with the notebook's write_results,
    build with latexmk; returns the PDF."""
    need_tools("latexmk", "pdfinfo", "pdftotext")
    (work / "report").mkdir(parents=True)
    for name in ("report.tex", "refs.bib"):
        shutil.copy(REPORT / name, work / "report" / name)
    shutil.copytree(FIGURES, work / "figures")
    if results.get("ablation") and not (work / "figures" / "schedule_ablation.pdf").exists():
        # the notebook draws this figure only when the ablation ran; the committed run may have none
        shutil.copy(FIGURES / "loss_curve.pdf", work / "figures" / "schedule_ablation.pdf")
    nb.write_results(copy.deepcopy(results), work / "figures", work / "report")
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                          cwd=work / "report", capture_output=True, text=True, errors="replace", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return work / "report" / "report.pdf"


class Built:
    def __init__(self, pdf, results):
        self.pdf, self.results = pdf, results
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        self.pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
        raw = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                             check=True).stdout
        self.text = re.sub(r"\s+", " ", raw)
        self.compact = re.sub(r"\s+", "", raw)          # line breaks may fall anywhere

    def says(self, phrase):
        """Whether the text has `phrase`. A page or column break can put a float's text inside a sentence,
        so the phrases checked are kept short."""
        return self.count(phrase) > 0

    def count(self, phrase):
        return self.compact.count(re.sub(r"\s+", "", phrase))


def built(nb, tmp_path_factory, run):
    results = RUNS[run]()
    return Built(build_report(nb, results, tmp_path_factory.mktemp(run)), results)


@pytest.fixture(scope="module")           # each PDF builds once
def committed_pdf(nb, tmp_path_factory):
    return built(nb, tmp_path_factory, "committed")


@pytest.fixture(scope="module")
def full_pdf(nb, tmp_path_factory):
    return built(nb, tmp_path_factory, "full")


@pytest.fixture(scope="module")
def flipped_pdf(nb, tmp_path_factory):
    return built(nb, tmp_path_factory, "flipped")


@pytest.fixture(scope="module")
def nofid_pdf(nb, tmp_path_factory):
    return built(nb, tmp_path_factory, "nofid")


ALL = ["committed_pdf", "full_pdf", "flipped_pdf", "nofid_pdf"]


# --- what every run's PDF must satisfy -----------------------------------------------------------------------

@pytest.mark.parametrize("which", ALL)
def test_report_builds_to_at_most_four_pages(which, request):
    assert 1 <= request.getfixturevalue(which).pages <= 4


@pytest.mark.parametrize("which", ALL)
def test_report_has_no_undefined_references(which, request):
    log = request.getfixturevalue(which).pdf.with_suffix(".log").read_text(errors="replace")
    assert not re.search(r"undefined (references|citations)|(Reference|Citation) `[^']*' on page \d+ undefined", log), \
        re.findall(r".*undefined.*", log)[:5]


@pytest.mark.parametrize("which", ALL)
def test_report_never_prints_an_unmeasured_number(which, request):
    assert not request.getfixturevalue(which).says("n/a")


@pytest.mark.parametrize("which", ALL)
def test_report_names_the_device_and_profile_of_its_run(which, request):
    pdf = request.getfixturevalue(which)
    assert pdf.says(pdf.results["device"])
    assert pdf.says(f"profile {pdf.results['config']['profile']}")
    assert pdf.says(pdf.results["run_id"])


@pytest.mark.parametrize("which", ALL)
def test_report_marks_the_guideline_questions_and_keeps_the_roles_table(which, request):
    pdf = request.getfixturevalue(which)
    for q in ("(Q1)", "(Q2)", "(Q3)", "(Q4)", "(Q5)"):
        assert pdf.says(q), q
    assert pdf.says("Who did what") and pdf.says("[name, student ID]")   # placeholders, filled in by the team
    last_page = pdf_tool("pdftotext", "-f", str(pdf.pages), "-l", str(pdf.pages), str(pdf.pdf), "-")
    assert "References" in last_page and TEX.rstrip().endswith("\\bibliography{refs}\n}\n\\end{document}")


@pytest.mark.parametrize("which", ALL)
def test_report_prints_every_fid_its_run_measured(which, request):
    pdf = request.getfixturevalue(which)
    for name, s in pdf.results["samplers"].items():
        if s.get("fid") is not None:
            assert pdf.says(f"{s['fid']:.1f}"), name
    for name, a in (pdf.results.get("ablation") or {}).items():
        if a.get("fid") is not None:
            assert pdf.says(f"{a['fid']:.1f}"), name


@pytest.mark.parametrize("which", ALL)
def test_report_cites_papers_by_their_own_equation_numbers(which, request):
    """Our equations are (1)-(4); Ho et al.'s and Song et al.'s are named as theirs, never a bare 'Eq. N'."""
    text = request.getfixturevalue(which).compact     # math from nearby lines can land in between
    bare = [text[max(0, m.start() - 20):m.end()] for m in re.finditer(r"Eqs?\.\d+", text)
            if not re.search(r"(Ho|Song).{0,2}et.{0,2}al\.,$", text[max(0, m.start() - 16):m.start()])]
    assert not bare, bare


# --- what each run implies ------------------------------------------------------------------------------------

def test_committed_run_reads_as_the_run_it_was(committed_pdf):
    r = committed_pdf.results
    on_gpu, full = r["config"]["device"] == "cuda", r["config"]["profile"] == "full"
    assert committed_pdf.says("This is a GPU run" if on_gpu else "This is a CPU run")
    assert not committed_pdf.says("This is a CPU run" if on_gpu else "This is a GPU run")
    ran = bool(r.get("ablation"))
    assert committed_pdf.says("Schedule ablation:") == ran                    # its figure
    assert committed_pdf.says("linear-versus-cosine ablation") != ran         # ... did not run
    assert committed_pdf.says("Beyond this run") == full and committed_pdf.says("sized for a GPU") != full


def test_full_gpu_run_names_its_gpu_and_prints_ddim100_and_the_ablation(full_pdf):
    r = full_pdf.results
    assert full_pdf.says("This is a GPU run") and full_pdf.says("NVIDIA H100 80GB HBM3")
    assert full_pdf.says(f"{r['samplers']['ddim_100']['fid']:.1f}")
    assert full_pdf.says(f"{r['ablation']['linear']['fid']:.1f}") and full_pdf.says(f"{r['ablation']['cosine']['fid']:.1f}")
    assert full_pdf.says("Schedule ablation:")                          # its figure is in
    for phrase in ("CPU run", "our CPU", "CPU cores", "two cores", "skipped"):
        assert not full_pdf.says(phrase), phrase


def test_full_gpu_run_states_its_verdicts(full_pdf):
    assert full_pdf.says("cannot be told apart")                        # DDIM-50 within the spread of ancestral
    assert full_pdf.says("cosine schedule is ahead")
    assert full_pdf.says("Beyond this run")                             # not "the full profile would ..."
    assert not full_pdf.says("sized for a GPU")


def test_other_verdicts_bring_their_own_explanations(flipped_pdf):
    for phrase in ("the opposite order",                  # DDIM-50 ahead of ancestral
                   "noise helps at equal steps",          # eta = 1 ahead
                   "fewer steps score better",
                   "Clipping does not help",
                   "linear schedule is ahead",
                   "cannot tell its samples from real",   # best sampler within the spread of the floor
                   "possible copying"):
        assert flipped_pdf.says(phrase), phrase
    for phrase in ("This agrees with", "as expected", "Clipping helps", "cosine schedule is ahead", "no sign of copying"):
        assert not flipped_pdf.says(phrase), phrase


def test_run_without_fid_says_so_once_and_prints_no_fid(nofid_pdf):
    assert nofid_pdf.count(FID_SKIP_REASON) == 1
    assert not nofid_pdf.says("n/a")
    fid = RESULTS["samplers"]["ancestral"]["fid"]
    if fid is not None:
        assert not nofid_pdf.says(f"{fid:.1f}")


# --- the committed run ----------------------------------------------------------------------------------------

def test_committed_results_come_from_a_real_run_not_a_smoke_run():
    assert RESULTS["config"]["profile"] in ("cpu", "full")
    assert RESULTS["device"] and RESULTS["timings"]["total"] > 0 and RESULTS["train"]["steps_done"] > 0


def test_committed_results_come_from_one_fresh_run_not_a_resumed_one():
    """Timings and training speed describe one session only when nothing was resumed."""
    train = RESULTS["train"]
    assert train["resumed"] is False and train["steps_this_run"] == train["steps_done"]


@pytest.mark.parametrize("run", list(RUNS))
def test_every_results_macro_the_report_uses_is_written(run, nb, tmp_path):
    used = set(re.findall(r"\\(Res[A-Za-z]+)", TEX_CODE))
    assert used, "the report quotes no measured number"
    written = macros_in(written_results_tex(nb, RUNS[run](), tmp_path))
    assert used <= written, used - written


def test_results_tex_agrees_with_results_json(nb, tmp_path):
    """report/results.tex is exactly what the notebook writes from figures/results.json."""
    assert (REPORT / "results.tex").read_text() == written_results_tex(nb, RESULTS, tmp_path)


def test_every_included_figure_exists():
    names = re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\}", TEX_CODE)
    assert names
    for name in names:
        if name == "schedule_ablation" and not RESULTS.get("ablation"):
            continue                                  # included only when the ablation ran
        assert any((FIGURES / f"{name}{ext}").is_file() for ext in ("", ".pdf", ".png")), name


@pytest.mark.parametrize("member", ["a", "b", "c"])
def test_reflection_is_within_the_word_limit(member):
    assert count_words((ROOT / "reflections" / f"member_{member}.md").read_text()) <= LIMIT


def test_word_count_ignores_markdown_syntax_and_counts_prose():
    text = "# Heading words here\n<!-- guidance that does not count -->\n**Bold** text, a [link](http://x.y) - and 3 items.\n"
    assert count_words(text) == 7          # Bold text, a link and 3 items.
    assert count_words("word " * (LIMIT + 1)) > LIMIT


COMMITTED_PDF = REPORT / "report.pdf"


def pdf_tool(*args):
    need_tools(args[0])
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def test_committed_pdf_has_at_most_four_pages():
    assert COMMITTED_PDF.is_file(), "build it with `make report` and commit report/report.pdf"
    pages = int(re.search(r"Pages:\s+(\d+)", pdf_tool("pdfinfo", str(COMMITTED_PDF))).group(1))
    assert 1 <= pages <= 4, pages


def test_committed_pdf_quotes_the_current_results():
    """The PDF was rebuilt after the last run: it names that run and prints its measured numbers."""
    text = re.sub(r"\s+", "", pdf_tool("pdftotext", "-enc", "UTF-8", str(COMMITTED_PDF), "-"))
    wanted = [RESULTS["run_id"], RESULTS["device"]]
    wanted += [f"{s['fid']:.1f}" for s in RESULTS["samplers"].values() if s.get("fid") is not None]
    wanted += [f"{RESULTS['vlb'][v]['bpd']:.2f}" for v in ("fixed_large", "fixed_small") if RESULTS.get("vlb")]
    missing = [w for w in wanted if re.sub(r"\s+", "", w) not in text]
    assert not missing, missing
