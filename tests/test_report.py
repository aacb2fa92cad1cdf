"""The report is true for whatever run wrote results.json: it builds within the page limit from the macros
the notebook's `write_results` computes, for the committed run, a full GPU run, the same run with every verdict
the other way, a run whose comparisons all show no measurable difference, and a run without FID; each PDF says
what its run implies (checked on the PDF's text, not on the LaTeX source). The Overleaf zip alone builds the
report. Reflections fit their word limit."""
import copy
import json
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
COMPARISONS = ("AncDDIM", "Eta", "DDIMSteps", "Clip", "Schedule", "Floor")


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
    2 if the interval holds 0 (no measurable difference at this N), 3 if not measured. Memo: 1 if the count of
    samples near the training set is above chance (its interval lies above the count chance gives), 0 if not,
    3 if not measured."""
    if key == "Memo":
        memo = results.get("memorisation") or {}
        return 3 if memo.get("count") is None else int(memo["low"] > memo["expected"])
    c = (results.get("comparisons") or {}).get(key)
    return 3 if c is None else 0 if c["high"] < 0 else 1 if c["low"] > 0 else 2


def memorisation(count, low, high, n=500, expected=5.0):
    """results["memorisation"]: how many of n DDIM-50 samples are nearer to a training image than the closest
    1% of held-out test images are (count, with its 95% interval), and how many chance gives (expected)."""
    return dict(sampler="ddim_50", n=n, test_n=500, quantile=0.01, threshold=5.1, count=count, expected=expected,
                low=low, high=high, min_l2=4.5)


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
    if scored:
        name, best = min(scored.items(), key=lambda item: item[1]["fid"])
        label = "ancestral" if name == "ancestral" else f"DDIM-{best['steps']}" + (", eta = 1" if best.get("eta") else "")
        r["best"] = dict(name=name, label=label, fid=best["fid"], n=best["fid_n"], floor=best["floor"])
        r["comparisons"]["Floor"] = comparison("real images", label, best["floor"], best["fid"], best["fid_n"],
                                               half_width)
    else:
        r.pop("best", None)
    return r


# --- five runs, as results dicts -------------------------------------------------------------------------------

def committed_run():
    """The committed run; a file written before comparisons had intervals gets them stated from its scores."""
    r = copy.deepcopy(RESULTS)
    if "comparisons" not in r:
        with_fid_fields(r)
        r["memorisation"] = memorisation(4, low=1, high=8)
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
    r["memorisation"] = memorisation(22, low=13, high=31, n=n, expected=20.0)
    r["skipped"] = {}
    return with_fid_fields(r)


def full_run_with_other_verdicts():
    """The full run with every comparison going the other way: DDIM-50 ahead of ancestral, eta = 1 ahead of
    eta = 0, DDIM-10 ahead of DDIM-100 and of real images, no clipping ahead, linear ahead of cosine, more
    samples near the training set than chance gives."""
    r = full_gpu_run()
    s, floor = r["samplers"], 32.8
    s["ancestral"]["fid"], s["ddim_50"]["fid"], s["ddim_50_eta1"]["fid"] = floor + 12, floor + 8, floor + 3
    s["ddim_100"]["fid"], s["ddim_50_noclip"]["fid"], s["ddim_10"]["fid"] = floor + 6, floor + 1.5, floor - 4
    r["ablation"]["linear"]["fid"], r["ablation"]["cosine"]["fid"] = 47.1, 52.4
    r["memorisation"] = memorisation(61, low=48, high=75, n=2000, expected=20.0)
    return with_fid_fields(r)


def full_run_with_no_measurable_difference():
    """The full run where every comparison's interval holds 0, the best sampler's against real images too, and
    the samples are near the training set no more often than chance."""
    r = full_gpu_run()
    for i, s in enumerate(r["samplers"].values()):
        s["fid"] = 34.0 + 0.3 * i
    r["ablation"]["linear"]["fid"], r["ablation"]["cosine"]["fid"] = 35.1, 35.4
    return with_fid_fields(r, half_width=4.0)


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
    return r


RUNS = {"committed": committed_run, "full": full_gpu_run, "flipped": full_run_with_other_verdicts,
        "allequal": full_run_with_no_measurable_difference, "nofid": run_without_fid}


def test_the_synthetic_runs_reach_every_verdict_the_report_can_give():
    """Together the made-up runs put each comparison in every state, whatever the committed run measured, so
    the phrase checks below cover each branch of the report."""
    made_up = [run for run in RUNS if run != "committed"]
    for key in COMPARISONS:
        assert {verdict_code(RUNS[run](), key) for run in made_up} == {0, 1, 2, 3}, key
    assert {verdict_code(RUNS[run](), "Memo") for run in made_up} == {0, 1}
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


ALL = ["committed_pdf", "full_pdf", "flipped_pdf", "allequal_pdf", "nofid_pdf"]
WITH_FID = ["committed_pdf", "full_pdf", "flipped_pdf", "allequal_pdf"]

# What the report says for each verdict code (report.tex's \Verdict branches); a comparison not measured
# (code 3) is left out, so none of its phrases may appear.
VERDICT_PHRASES = {
    "AncDDIM": ("This agrees with Song", "the opposite order", "ancestral sampling leads"),
    "Eta": ("the noise does not help", "the noise helps, unlike", "the noise makes no"),
    "DDIMSteps": ("more steps score better", "fewer steps score better", "the step count is too small"),
    "Clip": ("Clipping helps", "Clipping does not help", "Clipping makes no"),
    "Schedule": ("linear schedule is ahead", "cosine schedule is ahead", "two schedules show no"),
    "Floor": ("room to improve", "better-than-real samples", "cannot tell its samples"),
    "Memo": ("no more than chance", "possible copying", None, "whether the model copies"),
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
    assert full_pdf.says("Beyond this run") and not full_pdf.says("sized for a GPU")
    for phrase in ("CPU run", "our CPU", "CPU cores", "two cores", "skipped"):
        assert not full_pdf.says(phrase), phrase


@pytest.mark.parametrize("which", WITH_FID)
def test_report_names_the_best_sampler_and_says_eta_one_is_not_a_shorter_ancestral_sampler(which, request):
    pdf = request.getfixturevalue(which)
    named = pdf.squeezed.split(squeeze("The best sampler of this run is"), 1)[1]
    assert named.lower().startswith(squeeze(pdf.results["best"]["label"].split(",")[0]).lower()), named[:40]
    assert pdf.says("mixes the step count with the variance")     # DDIM-50 with eta = 1 against ancestral


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
