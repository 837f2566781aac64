"""One grid cell's detail, drawn below the grid: its runs (source, weights, replicates, reproduce
here), training curves, calibration on val and test, confusion matrix (threshold 0.5, pooled
over seeds) and the real test images it gets wrong."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from synthmed_core import paths
from synthmed_core.errors import SynthmedError
from synthmed_core.explorer.cell_detail import CellDetail, image_caption, summary, wrong_images
from synthmed_core.text import md_literal

from . import launch, readers

WRONG_SHOWN = 24
THUMB_PX = 84
CURVES = (("train_loss", "train loss"), ("val_auroc", "val AUROC"),
          ("val_accuracy", "val accuracy"))


def curves_figure(epochs: pd.DataFrame) -> go.Figure:
    """Train loss and val AUROC / accuracy by epoch, one line per seed."""
    fig = make_subplots(rows=1, cols=len(CURVES), subplot_titles=[t for _, t in CURVES])
    for seed, part in epochs.groupby("seed", sort=True):
        for col, (name, _) in enumerate(CURVES, start=1):
            fig.add_trace(go.Scatter(x=part["epoch"] + 1, y=part[name], mode="lines+markers",
                                     name=f"seed {seed}", legendgroup=str(seed),
                                     showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


SPLIT_COLORS = {"val": "#1f77b4", "test": "#d62728"}


def calibration_figure(detail: CellDetail) -> go.Figure:
    """Reliability diagram (observed share of pneumonia per bin of predicted probability) and
    accuracy vs decision threshold, val and test side by side, seeds pooled."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[
        "Reliability (seeds pooled)", "Accuracy vs threshold (0.5 marked)"])
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect",
                             line={"dash": "dot", "color": "grey"}), row=1, col=1)
    for split, color in SPLIT_COLORS.items():
        bins = detail.reliability[detail.reliability["split"] == split]
        curve = detail.thresholds[detail.thresholds["split"] == split]
        if bins.empty:
            continue
        ece = detail.ece.get(split, float("nan"))
        fig.add_trace(go.Scatter(
            x=bins["mean_prob"], y=bins["frac_pneumonia"], mode="lines+markers",
            name=f"{split} (ECE {ece:.3f})", legendgroup=split, line={"color": color},
            customdata=bins["count"], hovertemplate="predicted %{x:.2f}<br>observed %{y:.2f}"
                                                    "<br>%{customdata} images"), row=1, col=1)
        fig.add_trace(go.Scatter(x=curve["threshold"], y=curve["accuracy"], mode="lines",
                                 name=split, legendgroup=split, showlegend=False,
                                 line={"color": color}), row=1, col=2)
    fig.add_vline(x=0.5, line={"dash": "dash", "color": "grey"}, row=1, col=2)
    fig.update_xaxes(title_text="predicted P(pneumonia)", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="observed share of pneumonia", range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="threshold", range=[0, 1], row=1, col=2)
    fig.update_yaxes(title_text="accuracy", row=1, col=2)
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def _calibration(detail: CellDetail) -> None:
    if detail.reliability is None or detail.reliability.empty:
        st.caption("No predictions stored for these runs.")
        return
    ece = ", ".join(f"{k} {v:.3f}" for k, v in detail.ece.items())
    st.caption(f"Real val (26% normal) and test (37.5% normal) images, the cell's seeds pooled. "
               f"Expected calibration error (10 bins): {ece}. Where the two accuracy curves "
               "peak at different thresholds, a threshold tuned on val would not carry over to "
               "test; every stored test figure uses 0.5, fixed in advance.")
    st.plotly_chart(calibration_figure(detail), key="cell_calibration")
    _rates(detail)


def _rates(detail: CellDetail) -> None:
    """Sensitivity and specificity on val and on test, at 0.5 and at val's threshold."""
    rates = detail.rates
    if rates is None or rates.empty:
        return
    lines = [f"at {r['threshold']} — val: sensitivity {r['sensitivity']:.3f}, specificity "
             f"{r['specificity']:.3f}" if r["split"] == "val" else
             f"test: sensitivity {r['sensitivity']:.3f}, specificity {r['specificity']:.3f}"
             for r in rates.to_dict("records")]
    pairs = [" → ".join(lines[i:i + 2]) for i in range(0, len(lines), 2)]
    st.caption("Val vs test, mean over the cell's runs (prevalence alone moves neither rate: a "
               "drop on test is in that class's images): " + "; ".join(pairs))
    st.dataframe(rates, hide_index=True, key="cell_rates")


def _wrong_images(detail: CellDetail) -> None:
    wrong = wrong_images(detail, WRONG_SHOWN)
    if wrong.empty:
        st.caption("Every run of this cell classifies every test image right.")
        return
    st.caption(f"{md_literal(summary(detail))}. The most often wrong (p = seed-mean P(pneumonia)):")
    try:
        images = readers.test_images(str(paths.medmnist_root()))
    except SynthmedError as exc:
        st.warning(f"The real test images cannot be read, so only their indices show: "
                   f"{md_literal(exc)}")
        st.dataframe(wrong, hide_index=True)
        return
    rows = [r for r in wrong.to_dict("records") if int(r["idx"]) < len(images)]
    st.image([images[int(r["idx"])] for r in rows], caption=[image_caption(r) for r in rows],
             width=THUMB_PX)


def reproduce_form(db: str, detail: CellDetail, key: str = "cell") -> None:
    """Queue one of the cell's runs to be trained again here from its frozen spec (a shipped
    run then gets its weights on this machine, and its numbers are compared)."""
    runs = detail.runs
    if runs.empty:
        return
    away = runs[~runs["weights_here"]]
    options = list((away if len(away) else runs)["run_id"])
    left, right = st.columns([3, 1])
    run_id = left.selectbox("Reproduce a run here", options, key=f"{key}_reproduce_run",
                            help="Queues its exact spec as a job on this machine; when it "
                                 "finishes, its weights are here and its numbers are compared "
                                 "with the record it replaces (kept as a replicate).")
    if right.button("Reproduce here", key=f"{key}_reproduce"):
        try:
            st.caption(md_literal(launch.reproduce(run_id, readers.store(db))))
        except SynthmedError as exc:
            st.error(f"Cannot reproduce {run_id} here: {md_literal(exc)}")


def render(db: str, name: str, cell: dict) -> None:
    """The detail of the cell called ``name`` (its CELL_KEYS in ``cell``)."""
    st.subheader(f"Cell {md_literal(name)}")
    detail = readers.detail(db, tuple(cell.items()))
    if detail.runs.empty:
        st.info("No finished run in this cell.")
        return
    runs, curves, calibration, confusion, wrong = st.tabs(
        ["Runs", "Training curves", "Calibration", "Confusion matrix", "Wrong test images"])
    with runs:
        st.dataframe(detail.runs, hide_index=True, key="cell_runs", column_config={
            "val_threshold": st.column_config.NumberColumn(
                "val threshold", format="%.3f",
                help="the decision threshold the run's recipe picks on val (Youden's J unless "
                     "it says otherwise); reported beside the fixed 0.5, never instead"),
            "accuracy_at_val_threshold": st.column_config.NumberColumn(
                "accuracy at val threshold", format="%.3f"),
            "weights_here": st.column_config.CheckboxColumn(
                "weights here", help="the run's checkpoint is on this machine (Grad-CAM, "
                                     "Predict); runs from a bundle bring none")})
        for line in detail.replicates:
            st.caption(f"Replicate: {md_literal(line)}")
        reproduce_form(db, detail)
    with curves:
        if detail.epochs.empty:
            st.caption("No epoch rows stored for these runs.")
        else:
            st.plotly_chart(curves_figure(detail.epochs), key="cell_curves")
    with calibration:
        _calibration(detail)
    with confusion:
        st.caption("Real test split, P(pneumonia) >= 0.5, summed over the cell's runs.")
        st.table(detail.confusion)
    with wrong:
        _wrong_images(detail)
