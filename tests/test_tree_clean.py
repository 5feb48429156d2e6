"""The test suite leaves the checkout as it found it: tests write only to temporary folders (the notebooks run in
one too, so that their committed figures are not rewritten)."""

from __future__ import annotations

import pytest

from tests.conftest import LAST, TREE, tree_state


def test_the_suite_leaves_the_tree_as_it_found_it(request):
    assert request.node.name == LAST
    before = request.config.stash[TREE]
    if before is None:
        pytest.skip("not a git checkout")
    after = tree_state()
    assert after == before, {"new": sorted(set(after) - set(before)), "gone": sorted(set(before) - set(after))}
