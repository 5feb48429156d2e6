"""SPSA (Uesato et al., 2018) as an ART evasion attack: score-based, Rademacher directions."""

from __future__ import annotations

from art_he.attacks.score_based import ScoreBasedAttack


class SPSA(ScoreBasedAttack):
    """Untargeted (or targeted) Linf SPSA on the C&W margin, as the paper runs it (App. B.2, Table 8).

    ``g = 1/q sum_i (J(x + sigma u_i) - J(x - sigma u_i)) / (2 sigma) u_i`` with ``u_i`` uniform in ``{-1, +1}^d``
    (Rademacher), then ``x <- clip_{x0, eps}(x - eps_step sign(g))``. Defaults: ``q = 128``, ``sigma = 0.001``.

    >>> attack = SPSA(classifier, eps=0.031, eps_step=0.003, max_iter=20)
    >>> x_adv = attack.generate(x, y)
    """

