"""The report is true for whatever run wrote results.json: it builds within the page limit from the macros
the notebook's `write_results` computes, for the committed run, a full GPU run, the same run with every verdict
the other way, a run whose comparisons all show no measurable difference, a run without FID, and a run whose lowest
two samplers are level; each PDF says what its run implies (checked on the PDF's text, not on the LaTeX source). The Overleaf zip alone builds the
report. Reflections fit their word limit."""
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from count_words import LIMIT, count_words  # noqa: E402

REPORT, FIGURES = ROOT / "report", ROOT / "figures"
TEX = (REPORT / "report.tex").read_text()
TEX_CODE = re.sub(r"(?<!\\)%.*", "", TEX)          # without comments
RESULTS = json.loads((FIGURES / "results.json").read_text())
FID_SKIP_REASON = "torchmetrics is not installed (add it with: pip install torchmetrics)"
COMPARISONS = ("AncDDIM", "Eta", "DDIMSteps", "Clip", "Schedule", "Floor", "Best")


def macros_in(results_tex):
    return set(re.findall(r"\\newcommand\{\\(\w+)\}", results_tex))


def written_results_tex(nb, results, tmp_path):
    """What the notebook's write_results writes to results.tex for `results`."""
    out_dir, report_dir = tmp_path / "out", tmp_path / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    nb.write_results(copy.deepcopy(results), out_dir, report_dir)
    return (report_dir / "results.tex").read_text()


# --- the results.json fields the report's verdicts come from ---------------------------------------------------

def comparison(a, b, fid_a, fid_b, n, half_width):
    """results["comparisons"][key]: two FIDs at the same N, their gap fid_a - fid_b and its 95% interval."""
    gap = fid_a - fid_b
    return dict(a=a, b=b, n=n, fid_a=fid_a, fid_b=fid_b, gap=gap, low=gap - half_width, high=gap + half_width)


def verdict_code(results, key):
    """The code the report's verdict on `key` follows: 0 if a is lower (the interval lies below 0), 1 if b is,
    2 if the interval holds 0 (no measurable difference at this N), 3 if not measured. Memo: 0 if the count of
    samples near the training set is consistent with chance (exact P >= 0.05), 1 if it is above chance, 2 if below,
    3 if not measured."""
    if key == "Memo":
        memo = results.get("memorisation") or {}
        if memo.get("count") is None:
            return 3
        return 0 if memo["p_value"] >= 0.05 else 1 if memo["count"] > memo["expected"] else 2
    c = (results.get("comparisons") or {}).get(key)
    return 3 if c is None else 0 if c["high"] < 0 else 1 if c["low"] > 0 else 2


def memorisation_p_value(count, n, rank, test_n):
    """Exact two-sided P-value of `count` of n samples below the rank-th nearest of test_n test distances, if samples
    and test images are exchangeable: the count is beta-binomial(n, rank, test_n - rank + 1); twice the smaller tail."""
    a, b = rank, test_n - rank + 1
    def pmf(k):
        return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + math.lgamma(k + a)
                        + math.lgamma(n - k + b) - math.lgamma(n + a + b) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
    below = sum(pmf(k) for k in range(count + 1))
    above = sum(pmf(k) for k in range(count, n + 1))
    return min(1.0, 2 * min(below, above))


def memorisation(count, n=500, sampler="ddim_50", label="DDIM-50", test_n=500, quantile=0.01, p_value=None):
    """results["memorisation"]: how many of n samples of `sampler` are nearer to a training image than the r-th
    nearest of test_n held-out test images (r = quantile * test_n), how many chance gives, and the exact P-value."""
    rank = max(1, round(quantile * test_n))
    expected = n * rank / (test_n + 1)
    if p_value is None:
        p_value = memorisation_p_value(count, n, rank, test_n)
    return dict(sampler=sampler, label=label, n=n, test_n=test_n, quantile=quantile, rank=rank, threshold=5.1,
                count=count, expected=expected, p_value=p_value, min_l2=4.5)


def sampler_label(name, s):
    return s.get("label") or ("ancestral" if name == "ancestral" else f"DDIM-{s['steps']}"
                              + (", eta = 1" if s.get("eta") else "") + ("" if s.get("clip_sample", True) else ", no clipping"))


def best_fields(r, half_width):
    """r["best"] and r["comparisons"]["Best"] from the scored samplers: the lowest FID, its runner-up, and the samplers
    level with the lowest (the interval of their gap holds 0 when it is within half_width), lowest first."""
    scored = sorted(((name, s) for name, s in r["samplers"].items() if s.get("fid") is not None),
                    key=lambda item: item[1]["fid"])
    if not scored:
        r.pop("best", None)
        return r
    (name, best), level = scored[0], [item for item in scored[1:] if item[1]["fid"] - scored[0][1]["fid"] <= half_width]
    r["best"] = dict(names=[name] + [n for n, _ in level], labels=[sampler_label(n, s) for n, s in [scored[0]] + level],
                     name=name, label=sampler_label(name, best), fid=best["fid"], n=best["fid_n"], floor=best["floor"])
    if len(scored) > 1:
        runner_name, runner = scored[1]
        r["comparisons"]["Best"] = comparison(sampler_label(name, best), sampler_label(runner_name, runner), best["fid"],
                                              runner["fid"], best["fid_n"], half_width)
    return r


def with_fid_fields(r, half_width=2.8, floor_half_width=0.7):
    """r with its floors, comparisons and best sampler stated from its samplers' scores (fid, fid_n, floor) and
    its ablation, as the notebook states them: every comparison's 95% interval is its gap +- half_width, the
    floor's is its value +- floor_half_width. Fields of older files (spread) are dropped."""
    samplers, floors = r["samplers"], {}
    for s in samplers.values():
        for key in ("spread", "fid_at_ancestral_n", "floor_low", "floor_high"):
            s.pop(key, None)
        if s.get("fid") is not None:
            f = s["floor"]
            s.update(floor_low=f - floor_half_width, floor_high=f + floor_half_width)
            floors[str(s["fid_n"])] = dict(fid=f, low=f - floor_half_width, high=f + floor_half_width,
                                           scores=[f - floor_half_width / 2, f + floor_half_width / 2])
    r["fid"]["floor"] = floors
    scored = {name: s for name, s in samplers.items() if s.get("fid") is not None}
    pairs = {"AncDDIM": ("ancestral", "ddim_50", "ancestral", "DDIM-50"),
             "Eta": ("ddim_50", "ddim_50_eta1", "eta = 0", "eta = 1"),
             "DDIMSteps": ("ddim_100" if "ddim_100" in scored else "ddim_50", "ddim_10", None, "DDIM-10"),
             "Clip": ("ddim_50", "ddim_50_noclip", "clipped", "unclipped")}
    r["comparisons"] = {}
    for key, (a, b, label_a, label_b) in pairs.items():
        if a in scored and b in scored and scored[a]["fid_n"] == scored[b]["fid_n"]:
            r["comparisons"][key] = comparison(label_a or f"DDIM-{scored[a]['steps']}", label_b, scored[a]["fid"],
                                               scored[b]["fid"], scored[a]["fid_n"], half_width)
    ablation = r.get("ablation") or {}
    if scored and ablation.get("linear", {}).get("fid") is not None:
        lin, cos = ablation["linear"], ablation["cosine"]
        r["comparisons"]["Schedule"] = comparison("linear", "cosine", lin["fid"], cos["fid"], lin["fid_n"], half_width)
    best_fields(r, half_width)
    if scored:
        best = r["best"]
        r["comparisons"]["Floor"] = comparison("real images", best["label"], best["floor"], best["fid"], best["n"],
                                               half_width)
    return r


# --- five runs, as results dicts -------------------------------------------------------------------------------

def committed_run():
    """The committed run; fields of a file written before they existed are stated from its scores: intervals for its
    comparisons, the best sampler's test against the runner-up, and the memorisation count's exact P-value."""
    r = copy.deepcopy(RESULTS)
    if "comparisons" not in r:
        with_fid_fields(r)
    elif "Best" not in r["comparisons"] or "names" not in (r.get("best") or {}):
        best_fields(r, half_width=2.8)
    memo = r.get("memorisation") or {}
    if memo.get("count") is not None and "p_value" not in memo:
        r["memorisation"] = memorisation(memo["count"], n=memo["n"], test_n=memo["test_n"], quantile=memo["quantile"])
    return r


def with_white_shares(r, real=0.9, ancestral=1.1, eta0=6.0, eta1=1.3):
    """r with the share of pixels at 255 in real test images and in each sampler's images (percent in, fraction stored)."""
    r["real_white_share"] = real / 100
    for name, s in r["samplers"].items():
        s["white_share"] = (ancestral if name == "ancestral" else eta1 if s.get("eta") else eta0) / 100
    return r


def full_gpu_run():
    """The committed run as a `full` GPU run would have written it: DDIM-100 and DDIM-50 with eta = 1 drawn,
    every sampler scored at one N, the schedule ablation run, nothing skipped. Every comparison goes to the
    first-named (ancestral, eta = 0, more steps, clipping, real images) but the schedules' (cosine ahead); no
    sign of copying."""
    r = committed_run()
    r["device"] = "NVIDIA H100 80GB HBM3"
    r["config"].update(device="cuda", profile="full", ablation_steps=2000, ablation_n=1000,
                       ddim_steps=[10, 20, 50, 100])
    r["peak_gpu_memory_gb"] = 6.12
    r["total_minutes"] = r["timings"]["total_minutes"] = 19.6
    n, floor = 2000, 32.8

    def sampler(steps, fid, eta=0.0, clip=True, seconds=1.0):
        return dict(kind="ddim", steps=steps, eta=eta, clip_sample=clip, fid=fid, fid_n=n, floor=floor,
                    seconds_per_1000=seconds)
    r["samplers"] = {
        "ancestral": dict(sampler(1000, 53.5, seconds=21.3), kind="ancestral", eta=None),
        "ddim_10": sampler(10, 70.4, seconds=0.2),
        "ddim_20": sampler(20, 67.0, seconds=0.4),
        "ddim_50": sampler(50, 57.0, seconds=1.1),
        "ddim_100": sampler(100, 38.9, seconds=2.2),
        "ddim_50_eta1": sampler(50, 61.0, eta=1.0, seconds=1.2),
        "ddim_50_noclip": sampler(50, 87.8, clip=False, seconds=1.1),
    }
    r["ablation"] = {"linear": {"schedule": "linear", "fid": 52.4, "fid_n": 1000},
                     "cosine": {"schedule": "cosine", "fid": 47.1, "fid_n": 1000}}
    r["memorisation"] = memorisation(22, n=n, sampler="ddim_100", label="DDIM-100", test_n=2000)
    r["skipped"] = {}
    return with_white_shares(with_fid_fields(r))


def full_run_with_other_verdicts():
    """The full run with every comparison going the other way: DDIM-50 ahead of ancestral, eta = 1 ahead of
    eta = 0, DDIM-10 ahead of DDIM-100 and of real images, no clipping ahead, linear ahead of cosine, more
    samples near the training set than chance gives. DDIM-10 scores lowest, but paired with the runner-up at another
    N (500) the order flips; the pixels at 255 are as common with eta = 0 as with eta = 1."""
    r = full_gpu_run()
    s, floor = r["samplers"], 32.8
    s["ancestral"]["fid"], s["ddim_50"]["fid"], s["ddim_50_eta1"]["fid"] = floor + 12, floor + 8, floor + 3
    s["ddim_100"]["fid"], s["ddim_50_noclip"]["fid"], s["ddim_10"]["fid"] = floor + 6, floor + 1.5, floor - 4
    r["ablation"]["linear"]["fid"], r["ablation"]["cosine"]["fid"] = 47.1, 52.4
    r["memorisation"] = memorisation(61, n=2000, sampler="ddim_10", label="DDIM-10", test_n=2000)
    with_white_shares(with_fid_fields(r), eta0=1.2, eta1=1.2)
    r["comparisons"]["Best"] = comparison("DDIM-10", r["comparisons"]["Best"]["b"], 36.9, 35.0, 500, 1.0)
    return r


def full_run_with_no_measurable_difference():
    """The full run where every comparison's interval holds 0, the best sampler's against real images too, and
    the samples are near the training set no more often than chance."""
    r = full_gpu_run()
    for i, s in enumerate(r["samplers"].values()):
        s["fid"] = 34.0 + 0.3 * i
    r["ablation"]["linear"]["fid"], r["ablation"]["cosine"]["fid"] = 35.1, 35.4
    return with_fid_fields(r, half_width=4.0)


def run_with_two_level_samplers():
    """The committed run's samplers, the lowest two level (their interval holds 0), the rest measurably behind."""
    r = committed_run()
    for name, fid in zip(r["samplers"], (50.4, 63.6, 61.4, 60.8, 49.5, 76.9)):
        r["samplers"][name]["fid"] = fid
    return with_fid_fields(r, half_width=2.8)



def run_without_fid():
    """The committed run as it would read without torchmetrics: no sampler scored, no comparison, no best."""
    r = committed_run()
    for s in r["samplers"].values():
        s.update(fid=None, fid_n=0)
        for key in ("floor", "floor_low", "floor_high", "spread", "fid_at_ancestral_n"):
            s.pop(key, None)
    r["fid"] = {"weights": None, "n_generated": None, "smoke_only": False, "n_real": None, "floor": {}}
    r["comparisons"] = {}
    r.pop("best", None)
    r["skipped"] = dict(r.get("skipped") or {}, fid=FID_SKIP_REASON)
    r["memorisation"] = memorisation(0, n=500, sampler="ddim_50", label="DDIM-50", p_value=0.012)
    return with_white_shares(r)


RUNS = {"committed": committed_run, "full": full_gpu_run, "flipped": full_run_with_other_verdicts,
        "allequal": full_run_with_no_measurable_difference, "nofid": run_without_fid, "twolevel": run_with_two_level_samplers}


def test_the_synthetic_runs_reach_every_verdict_the_report_can_give():
    """Together the made-up runs put each comparison in every state, whatever the committed run measured, so
    the phrase checks below cover each branch of the report."""
    made_up = [run for run in RUNS if run != "committed"]
    for key in COMPARISONS:
        assert {verdict_code(RUNS[run](), key) for run in made_up} == {0, 1, 2, 3}, key
    assert {verdict_code(RUNS[run](), "Memo") for run in made_up} == {0, 1, 2}
    assert {verdict_code(RUNS["allequal"](), key) for key in COMPARISONS} == {2}


# --- building the PDF ---------------------------------------------------------------------------------------

def need_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install {missing} (latexmk, TeX Live, poppler-utils; see .ci/run)")
        pytest.skip(f"{missing} not installed")


def latexmk(folder):
    """Build report.tex in `folder`; returns the PDF."""
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                          cwd=folder, capture_output=True, text=True, errors="replace", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return folder / "report.pdf"


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
    return latexmk(work / "report")


def undefined_references(pdf):
    log = pdf.with_suffix(".log").read_text(errors="replace")
    found = re.search(r"undefined (references|citations)|(Reference|Citation) `[^']*' on page \d+ undefined", log)
    return re.findall(r".*undefined.*", log)[:5] if found else []


def page_count(pdf):
    return int(re.search(r"Pages:\s+(\d+)", pdf_tool("pdfinfo", str(pdf))).group(1))


def squeeze(text):
    """Text without white space or hyphens: a line break, or a hyphen TeX adds to break a word, may fall anywhere."""
    return re.sub(r"[\s-]+", "", text)


class Built:
    def __init__(self, pdf, results):
        self.pdf, self.results = pdf, results
        self.pages = page_count(pdf)
        raw = pdf_tool("pdftotext", "-enc", "UTF-8", str(pdf), "-")
        self.text = re.sub(r"\s+", " ", raw)
        self.compact = re.sub(r"\s+", "", raw)
        self.squeezed = squeeze(raw)

    def says(self, phrase):
        """Whether the text has `phrase`. A page or column break can put a float's text inside a sentence,
        so the phrases checked are kept short."""
        return self.count(phrase) > 0

    def count(self, phrase):
        return self.squeezed.count(squeeze(phrase))

    def abstract(self):
        """The squeezed text of the first page's left column (title, abstract), up to the first section."""
        column = pdf_tool("pdftotext", "-f", "1", "-l", "1", "-x", "0", "-y", "0", "-W", "297", "-H", "842",
                          str(self.pdf), "-")
        return squeeze(column).split(squeeze("Diffusion models: two processes"), 1)[0]


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
def allequal_pdf(nb, tmp_path_factory):
    return built(nb, tmp_path_factory, "allequal")


@pytest.fixture(scope="module")
def nofid_pdf(nb, tmp_path_factory):
    return built(nb, tmp_path_factory, "nofid")


@pytest.fixture(scope="module")
def twolevel_pdf(nb, tmp_path_factory):
    return built(nb, tmp_path_factory, "twolevel")


ALL = ["committed_pdf", "full_pdf", "flipped_pdf", "allequal_pdf", "nofid_pdf", "twolevel_pdf"]
WITH_FID = ["committed_pdf", "full_pdf", "flipped_pdf", "allequal_pdf", "twolevel_pdf"]

# What the report says for each verdict code (report.tex's \Verdict branches); a comparison not measured
# (code 3) is left out, so none of its phrases may appear.
VERDICT_PHRASES = {
    "AncDDIM": ("agrees with Song", "the opposite order", "leads by 1.5"),
    "Eta": ("the noise does not help", "the noise helps, unlike", "the noise makes no"),
    "DDIMSteps": ("more steps score better", "fewer steps score better", "the step count is too small"),
    "Clip": ("Clipping helps", "Clipping does not help", "Clipping makes no"),
    "Schedule": ("linear schedule is ahead", "cosine schedule is ahead", "two schedules show no"),
    "Floor": ("room to improve", "better-than-real samples", "cannot tell its samples"),
    "Memo": ("no sign of copying at this N", "more often than chance gives", "farther from the training set than",
             "whether the model copies"),
    "Best": ("The best sampler of this run is", "the order flips", "No single sampler is best"),
}


# --- what every run's PDF must satisfy -----------------------------------------------------------------------

@pytest.mark.parametrize("which", ALL)
def test_report_builds_to_at_most_four_pages(which, request):
    assert 1 <= request.getfixturevalue(which).pages <= 4


@pytest.mark.parametrize("which", ALL)
def test_report_has_no_undefined_references(which, request):
    assert not undefined_references(request.getfixturevalue(which).pdf)


@pytest.mark.parametrize("which", ALL)
def test_report_never_prints_an_unmeasured_number(which, request):
    pdf = request.getfixturevalue(which)
    assert not pdf.says("n/a") and not pdf.says("??")


@pytest.mark.parametrize("which", ALL)
def test_report_compares_scores_by_intervals_never_by_a_spread(which, request):
    pdf = request.getfixturevalue(which)
    assert "times the spread" not in pdf.text.lower() and "spread" not in pdf.compact.lower()


@pytest.mark.parametrize("which", ALL)
def test_report_gives_each_verdict_the_explanation_of_its_code(which, request):
    pdf = request.getfixturevalue(which)
    for key, phrases in VERDICT_PHRASES.items():
        code = verdict_code(pdf.results, key)
        for i, phrase in enumerate(phrases):
            if phrase:
                assert pdf.says(phrase) == (i == code), (key, code, phrase)


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
    pages = [squeeze(pdf_tool("pdftotext", "-f", str(p), "-l", str(p), str(pdf.pdf), "-")) for p in range(1, pdf.pages + 1)]
    table, caption = squeeze("Part of the work"), squeeze("Who did what")
    assert [table in p for p in pages] == [caption in p for p in pages]   # the table and its caption share a page


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
def test_abstract_gives_the_headline_numbers_of_its_run(which, request):
    pdf = request.getfixturevalue(which)
    abstract, best = pdf.abstract(), pdf.results.get("best")
    assert squeeze(f"{pdf.results['vlb']['fixed_large']['bpd']:.2f}") in abstract
    if best:
        for number in (f"{best['fid']:.1f}", f"{best['floor']:.1f}", f"{best['n']:,}"):
            assert squeeze(number) in abstract, number
    else:
        assert "FID" not in abstract


@pytest.mark.parametrize("which", ALL)
def test_report_cites_papers_by_their_own_equation_numbers(which, request):
    """Our equations are numbered (1), (2), ...; Ho et al.'s, Song et al.'s and Nichol and Dhariwal's are named as
    theirs, never a bare 'Eq. N'."""
    text = request.getfixturevalue(which).compact     # math from nearby lines can land in between
    bare = [text[max(0, m.start() - 20):m.end()] for m in re.finditer(r"Eqs?\.\d+", text)
            if not re.search(r"((Ho|Song).{0,2}et.{0,2}al\.|Nichol.{0,2}and.{0,2}Dhariwal),$",
                             text[max(0, m.start() - 24):m.start()])]
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
    assert full_pdf.says("Beyond this run") and not full_pdf.says("sized for a GPU")
    for phrase in ("CPU run", "our CPU", "CPU cores", "two cores", "skipped"):
        assert not full_pdf.says(phrase), phrase


def names_best(pdf):
    """The label the PDF names as the best sampler, as squeezed text (its first 40 characters), or None."""
    said = [part[:40] for part in pdf.squeezed.split(squeeze("Our best sampler, measurably ahead of the runner-up, is"))[1:]]
    said += [part[:40] for part in pdf.squeezed.split(squeeze("The best sampler of this run is"))[1:]]
    return said


def says_level(pdf, labels):
    """Whether the PDF says the samplers `labels` are level, in the abstract and in Section 4."""
    names = squeeze(" and ".join([", ".join(labels[:-1]), labels[-1]]) if len(labels) > 1 else labels[0])
    names = names.replace("eta=1", "η=1")
    return (pdf.count("No single sampler is best at this N") == 1 and
            pdf.squeezed.count(names + squeeze("are level")) == 2 and (names + squeeze("are level")) in pdf.abstract())


@pytest.mark.parametrize("which", WITH_FID)
def test_report_names_a_best_sampler_only_when_its_lead_over_the_runner_up_is_measured(which, request):
    """A sampler is "best" only when the 95% interval of its gap to the runner-up excludes 0 (in the abstract and in
    Section 4); otherwise the samplers level with the lowest are named as level, and none is called best."""
    pdf = request.getfixturevalue(which)
    best, code = pdf.results["best"], verdict_code(pdf.results, "Best")
    label = squeeze(best["label"].replace("eta = 1", "η=1")).lower()
    named = names_best(pdf)
    if code == 0:
        assert len(named) == 2 and all(n.lower().startswith(label) for n in named), named
        assert not pdf.says("are level (no measurable difference in FID)")
    else:
        assert not named and not pdf.says("best sampler"), named
    if code == 2:
        assert says_level(pdf, best["labels"]), best["labels"]
    assert pdf.says("mixes the step count with the variance")     # DDIM-50 with eta = 1 against ancestral


def test_two_level_samplers_are_named_as_level_and_neither_as_best(twolevel_pdf):
    r = twolevel_pdf.results
    assert verdict_code(r, "Best") == 2 and r["best"]["names"] == ["ddim_50_eta1", "ancestral"]
    assert says_level(twolevel_pdf, ["DDIM-50, eta = 1", "ancestral"])
    assert not names_best(twolevel_pdf) and not twolevel_pdf.says("best sampler")


def test_a_sampler_measurably_ahead_of_the_runner_up_is_named_best(full_pdf):
    r = full_pdf.results
    assert verdict_code(r, "Best") == 0 and r["best"]["names"] == ["ddim_100"]
    named = names_best(full_pdf)
    assert len(named) == 2 and all(n.lower().startswith("ddim100") for n in named), named
    assert not full_pdf.says("are level (no measurable difference in FID)")


def test_fewer_near_copies_than_chance_is_read_both_ways_without_a_bootstrap_of_zero(nofid_pdf):
    memo = nofid_pdf.results["memorisation"]
    assert memo["count"] == 0 and memo["n"] == 500 and memo["p_value"] < 0.05 and verdict_code(nofid_pdf.results, "Memo") == 2
    assert nofid_pdf.says("fewer than chance") and nofid_pdf.says("farther from the training set than held-out real images")
    assert not nofid_pdf.says("0 to 0") and not nofid_pdf.says("no sign of copying at this N")


@pytest.mark.parametrize("which", ALL)
def test_report_never_prints_a_bootstrap_interval_of_a_count(which, request):
    assert not request.getfixturevalue(which).says("0 to 0")


def test_a_run_with_no_measurable_difference_says_so(allequal_pdf):
    assert allequal_pdf.count("no measurable difference") >= 5


def test_run_without_fid_says_so_once_and_prints_no_fid(nofid_pdf):
    assert nofid_pdf.count(FID_SKIP_REASON) == 1
    fid = RESULTS["samplers"]["ancestral"]["fid"]
    if fid is not None:
        assert not nofid_pdf.says(f"{fid:.1f}")
    assert not nofid_pdf.says("best sampler")


def test_overleaf_zip_alone_builds_the_report(nb, tmp_path):
    """The zip the notebook writes is a whole Overleaf project: unpacked into an empty folder, it builds."""
    need_tools("latexmk", "pdfinfo")
    out_dir, report_dir, project = tmp_path / "out", tmp_path / "report", tmp_path / "unzipped" / "project"
    for folder in (out_dir, report_dir, project):
        folder.mkdir(parents=True)
    figures = sorted(FIGURES.glob("*.pdf"))
    for path in figures:
        shutil.copy(path, out_dir)
    for name in ("report.tex", "refs.bib"):
        shutil.copy(REPORT / name, report_dir)
    nb.write_results(RUNS["committed"](), out_dir, report_dir)
    with zipfile.ZipFile(out_dir / "overleaf.zip") as z:
        names = set(z.namelist())
        z.extractall(project)
    assert {"report.tex", "refs.bib", "results.tex"} <= names and names & {"results.json", "figures/results.json"}, names
    assert {f"figures/{p.name}" for p in figures} <= names, names
    assert (project / "results.tex").read_text() == (report_dir / "results.tex").read_text()
    pdf = latexmk(project)              # nothing beside `project` holds figures: it builds from the zip alone
    assert 1 <= page_count(pdf) <= 4 and not undefined_references(pdf)


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


def test_figures_are_included_at_the_width_they_are_drawn_for():
    """Each figure is drawn at its printed size: the full text width or one column, never scaled by height."""
    widths = {name: width for width, name in re.findall(r"\\includegraphics\[width=\\(textwidth|columnwidth)\]\{([^}]+)\}", TEX_CODE)}
    assert len(widths) == len(re.findall(r"\\includegraphics", TEX_CODE)), "every figure at one of the two widths"
    assert {name for name, width in widths.items() if width == "textwidth"} == {"forward_process", "schedules", "fid_vs_steps"}


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
    assert 1 <= page_count(COMMITTED_PDF) <= 4


def test_committed_pdf_quotes_the_current_results():
    """The PDF was rebuilt after the last run: it names that run and prints its measured numbers."""
    text = re.sub(r"\s+", "", pdf_tool("pdftotext", "-enc", "UTF-8", str(COMMITTED_PDF), "-"))
    wanted = [RESULTS["run_id"], RESULTS["device"]]
    wanted += [f"{s['fid']:.1f}" for s in RESULTS["samplers"].values() if s.get("fid") is not None]
    wanted += [f"{RESULTS['vlb'][v]['bpd']:.2f}" for v in ("fixed_large", "fixed_small") if RESULTS.get("vlb")]
    missing = [w for w in wanted if re.sub(r"\s+", "", w) not in text]
    assert not missing, missing
