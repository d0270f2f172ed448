"""Diffusion pipelines (diffusers `DiffusionPipeline` subclasses)."""

from .pipeline_hallo4 import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT, Hallo4Pipeline, Hallo4PipelineOutput

__all__ = ["Hallo4Pipeline", "Hallo4PipelineOutput", "DEFAULT_PROMPT", "DEFAULT_NEGATIVE_PROMPT"]
