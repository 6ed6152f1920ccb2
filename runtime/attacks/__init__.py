"""Adversarial attacks on classifiers (the values of runtime/ops/attacks.py): torchattacks' FGSM, PGD,
Square and AutoAttack run on a view of the classifier that takes inputs in [0, 1] (the data's range
[lo, hi]) and divides the logits by the attacker's temperature (build.py); the attack success rate
and the IOR diagnostics (success.py). Imported only when an attack runs (torch)."""
