"""Ablation grids over one store: variants, their results, tables and pictures."""
