"""Diffusion-DPO training for the Hallo4 transformer, fed by the app's A/B votes."""
