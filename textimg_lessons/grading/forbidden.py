"""What each exercise may not call: the course's own implementation of what the exercise asks for.

The student versions import the package (the tests compare answers with it), so an answer could simply
call `bp.linear_backward`. Each exercise declares the package functions it may not use, here (by chapter
and the exercise's solution grade_id) or in its solution cell's metadata
(`{"textimg_lessons": {"forbidden": ["textimg_lessons.backprop:linear_backward"]}}`). Two checks use it:
- a static scan of the cells the student wrote, for references through imports, aliases and `getattr`
  (`check` reports them with what is allowed; autograde flags them and the exercise scores 0);
- a runtime recorder while the exercise's tests run (instrument.py), which sees calls made from the
  student's code however the function was reached (`__import__`, `importlib`, `exec`, a wrapper).
"""
from __future__ import annotations

import ast

from .instrument import exercise_of_tests
from .notebook import grade_id, is_locked, nbgrader_meta, normalise_source
from .pysource import dotted_name, import_aliases, parse_cell

_BP, _CNN, _GAN, _VAE = "textimg_lessons.backprop", "textimg_lessons.cnn", "textimg_lessons.gan", "textimg_lessons.vae"
_ATT, _TEXT, _COND = "textimg_lessons.attention", "textimg_lessons.text", "textimg_lessons.conditional"
_DIFF, _FAST = "textimg_lessons.diffusion", "textimg_lessons.faster"
# chapter -> exercise (solution cell grade_id) -> "module:function" the answer may not call
FORBIDDEN = {
    "01_backprop": {
        "ex2_numerical_gradient": ["textimg_lessons.checks:numerical_gradient"],
        "ex3_linear_backward": [f"{_BP}:linear_backward"],
        "ex4_relu_backward": [f"{_BP}:relu_backward"],
        "ex5_softmax_cross_entropy": [f"{_BP}:softmax_cross_entropy"],
    },
    "02_cnn": {
        "ex1_conv2d_loops": [f"{_CNN}:conv2d_loops", f"{_CNN}:conv2d_unfold"],
        "ex2_output_size": [f"{_CNN}:conv_output_size"],
        "ex3_maxpool_unfold": [f"{_CNN}:maxpool2d_loops", f"{_CNN}:maxpool2d_unfold"],
        "ex4_parameter_count": [f"{_CNN}:count_parameters"],
    },
    "03_gan": {
        "ex1_d_loss": [f"{_GAN}:d_loss"],
        "ex2_g_loss": [f"{_GAN}:g_loss_nonsaturating"],
        "ex3_gradient_penalty": [f"{_GAN}:gradient_penalty"],
    },
    "04_vae": {
        "ex1_reparameterize": [f"{_VAE}:reparameterize"],
        "ex2_gaussian_kl": [f"{_VAE}:gaussian_kl"],
    },
    "05_language_models": {
        "ex1_attention": [f"{_ATT}:scaled_dot_product_attention", f"{_ATT}:attention_weights"],
        "ex2_causal_mask": [f"{_ATT}:causal_mask"],
        "ex3_mean_pool": [f"{_TEXT}:mean_pool"],
    },
    "06_text_to_image": {
        "ex2_sample": [f"{_COND}:sample"],
        "ex3_adherence": ["textimg_lessons.metrics:prompt_adherence"],
    },
    "07_diffusion": {
        "ex1_ddpm_closed_form": [f"{_DIFF}:ddpm_closed_form"],
        "ex2_flow_matching_loss": [f"{_DIFF}:flow_matching_loss"],
        "ex3_cross_attention": [f"{_DIFF}:cross_attention", f"{_ATT}:scaled_dot_product_attention"],
        "ex4_guided_velocity": [f"{_DIFF}:guided_velocity"],
        "ex5_euler_step": [f"{_DIFF}:sample_latents"],
    },
    "08_faster_generation": {
        "ex1_median_time": [f"{_FAST}:time_call"],
        "ex2_embedding_cache": [f"{_FAST}:CachedTokenStates", f"{_FAST}:generate_cached"],
        "ex3_reflow_loss": ["textimg_lessons.reflow:reflow_loss", f"{_DIFF}:flow_matching_loss"],
    },
}


def declared(release_nb, chapter: str) -> dict:
    """Exercise (solution grade_id) -> forbidden targets, from FORBIDDEN and the solution cells' metadata."""
    found = {ex: list(targets) for ex, targets in FORBIDDEN.get(chapter, {}).items()}
    for cell in release_nb.cells:
        extra = cell.get("metadata", {}).get("textimg_lessons", {}).get("forbidden")
        if extra and grade_id(cell):
            found.setdefault(grade_id(cell), []).extend(extra)
    return found


def answer_names(release_nb) -> dict:
    """Exercise (solution grade_id) -> the top-level names its solution cell defines."""
    names = {}
    for cell in release_nb.cells:
        if cell.cell_type == "code" and nbgrader_meta(cell).get("solution") and grade_id(cell):
            tree = parse_cell(cell.source)
            names[grade_id(cell)] = [n.name for n in getattr(tree, "body", [])
                                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return names


def per_test(release_nb, chapter: str) -> tuple:
    """({test grade_id: targets}, {test grade_id: answer names}) for the instrumented run."""
    forbidden, names = declared(release_nb, chapter), answer_names(release_nb)
    tests = exercise_of_tests(release_nb)
    return ({t: forbidden[ex] for t, ex in tests.items() if forbidden.get(ex)},
            {t: names.get(ex, []) for t, ex in tests.items() if forbidden.get(ex)})


def allowed_message(exercise: str, targets: list, answers=()) -> str:
    """What `check` tells a student whose answer calls what the exercise asks them to write."""
    used = ", ".join(t.replace(":", ".").replace("textimg_lessons.", "") for t in targets)
    what = f"{', '.join(answers)} ({exercise})" if answers else exercise
    return (f"{what}: your answer uses {used}, the course's own implementation of this exercise. Write it "
            f"yourself with tensor operations; other functions of torch and of earlier exercises are allowed.")


def scan(sub_nb, release_nb, chapter: str) -> dict:
    """Exercise -> forbidden targets the cells the student wrote refer to (imports, aliases, getattr with a
    constant name, a call through `module.function`): the exercise's own solution cell and cells the student
    added. Cells identical to the release's are not scanned; without a release (`check`), only the solution
    cells are."""
    forbidden = declared(release_nb if release_nb is not None else sub_nb, chapter)
    if not forbidden:
        return {}
    if release_nb is None:
        cells = [c for c in sub_nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("solution")]
    else:
        release_sources = {normalise_source(c.source) for c in release_nb.cells if c.cell_type == "code"}
        cells = [c for c in sub_nb.cells if c.cell_type == "code" and not is_locked(c)
                 and normalise_source(c.source) not in release_sources]
    trees = [t for t in (parse_cell(c.source) for c in sub_nb.cells if c.cell_type == "code") if t is not None]
    aliases = import_aliases(trees)
    hits = {}
    for cell in cells:
        tree = parse_cell(cell.source)
        if tree is None:
            continue
        refs = _references(tree, aliases)
        owner = grade_id(cell) if nbgrader_meta(cell).get("solution") else None
        for exercise, targets in forbidden.items():
            if owner not in (None, exercise):  # another exercise's answer may use it (e.g. to check itself)
                continue
            used = sorted(t for t in targets if t.replace(":", ".") in refs)
            if used:
                hits.setdefault(exercise, set()).update(used)
    return {ex: sorted(t) for ex, t in hits.items()}


def _references(tree, aliases) -> set:
    """Dotted names ('textimg_lessons.backprop.linear_backward') that a cell refers to."""
    refs = set()
    for node in ast.walk(tree):
        parts = None
        if isinstance(node, (ast.Attribute, ast.Name)):
            parts = dotted_name(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            parts = dotted_name(node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                refs.add(f"{node.module}.{a.name}" if isinstance(node, ast.ImportFrom) and node.module else a.name)
        if parts and parts[0] in aliases:
            refs.add(".".join([aliases[parts[0]]] + parts[1:]))
    return refs
