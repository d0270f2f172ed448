"""The Models tab: which engines are ready, hallo4's precision / offload / vocal separation, the download."""

from __future__ import annotations

import gradio as gr

from .. import admin, studio
from . import messages
from .common import progress_for, user_errors

PRECISIONS = [
    ("auto: release or bf16 by free GPU memory, fp32 on CPU", "none"),
    ("release: the authors' numerics (fp32 weights, bf16 autocast)", "release"),
    ("bf16 weights", "bf16"),
    ("8-bit weights (bitsandbytes)", "8bit"),
    ("fp32 (exact, slow)", "fp32"),
]
OFFLOADS = [
    ("none (all on the GPU)", "none"),
    ("model (one component at a time)", "model"),
    ("group (block by block, least memory)", "group"),
]


def models_status() -> str:
    """The Models tab's status as Markdown (readable, and no path strings a client would try to fetch)."""
    st = studio.model_status()
    h = st["hallo4"]
    comps = ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in h["components"].items())
    return "\n".join(
        [
            "| engine | status |",
            "|---|---|",
            f"| lite | ready: {st['lite']['needs']} |",
            f"| hallo4 | {'**ready**' if h['ready'] else '**weights missing**'} in `{h['path']}` ({comps}) |",
            "",
            f"Device: {h['device']}. Precision: {h['quantize'] or 'bf16 (GPU) / fp32 (CPU)'}. "
            f"Offload: {h['offload'] or 'none'}. Active DPO round: {h['adapter'] or 'none (base model)'}.",
            "",
            h.get("memory", ""),
            ""
            if h["ready"]
            else "\nTo get the weights (or press *Download* below where this machine has a network):\n\n```bash\n"
            + h["how_to_get"].replace(" && ", "\n")
            + "\n```",
        ]
    )


@user_errors
@admin.required("Models: saving settings", token_param="token")
def models_save(quantize, offload, token, vocal_separation="auto", request: gr.Request = None):
    studio.save_settings(quantize=quantize, offload=offload, vocal_separation=vocal_separation)
    return models_status()


@user_errors
@admin.required("Models: downloading weights")
def models_download(token, request: gr.Request = None, progress=gr.Progress()):
    dest = studio.download_official(progress_for(request, progress, "models_download"))
    ready = studio.hallo4_weights_present(str(dest))
    return f"Downloaded and converted to {dest}. " + (
        "The hallo4 engine is ready (reload the page)." if ready else "Still missing: see the status above."
    )


def build():
    """The Models tab's layout and events (call inside gr.Tab); returns the status Markdown for page load."""
    st_json = gr.Markdown(label="Engines and weights")
    s = studio.load_settings()
    with gr.Row():
        quantize = gr.Radio(PRECISIONS, value=s.quantize or "none", label="hallo4 precision")
        offload = gr.Radio(OFFLOADS, value=s.offload or "none", label="Offload (GPU memory)")
        vocal = gr.Radio(
            [("auto (on when Kim_Vocal_2.onnx is present)", "auto"), ("on", "on"), ("off", "off")],
            value=s.vocal_separation,
            label="Vocal separation before wav2vec2 (as the release)",
        )
    m_token = gr.Textbox(label="Admin token", type="password", visible=messages.admin_token_required())
    gr.Markdown(messages.admin_note())
    with gr.Row():
        save_btn = gr.Button("Save settings")
        dl_btn = gr.Button("Download and convert the hallo4 weights")
    dl_msg = gr.Textbox(label="Download")
    save_btn.click(models_save, [quantize, offload, m_token, vocal], [st_json], api_name="models_save")
    dl_btn.click(models_download, [m_token], [dl_msg], api_name="models_download", concurrency_limit=1)
    return st_json
