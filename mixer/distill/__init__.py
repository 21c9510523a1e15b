"""Distillation of a trained mixture into fewer encoders (``merv distill``): the objective,
the student's run config, its evaluation against the teacher, and the sweep over subsets."""
