# -*- coding: utf-8 -*-
"""The collection's one threshold rule and verdict order (module_utils/common/findings.py)."""

from __future__ import annotations

import pytest

from ansible_collections.oncall.runbooks.plugins.module_utils.common import findings as f


@pytest.mark.parametrize('value,expected', [(99, 'ok'), (100, 'warning'), (499, 'warning'),
                                            (500, 'critical'), (501, 'critical')])
def test_a_figure_at_a_threshold_crosses_it(value, expected):
    assert f.verdict(value, 100, 500) == expected


@pytest.mark.parametrize('verdicts,expected', [
    ([], 'ok'), (['ok', 'ok'], 'ok'), (['ok', 'unknown'], 'unknown'),
    (['unknown', 'warning'], 'warning'), (['warning', 'critical', 'unknown'], 'critical'),
    ([{'verdict': 'warning'}, {'verdict': 'ok'}], 'warning'), (['bogus'], 'unknown'),
    ([{'object': 'no verdict'}], 'ok')])
def test_worst_verdict(verdicts, expected):
    assert f.worst(verdicts) == expected


@pytest.mark.parametrize('verdict,fail_on,fails', [
    ('critical', 'critical', True), ('warning', 'critical', False), ('unknown', 'critical', False),
    ('warning', 'warning', True), ('unknown', 'warning', True), ('ok', 'warning', False),
    ('critical', 'never', False), ('critical', None, True)])
def test_fail_on(verdict, fail_on, fails):
    assert f.fails(verdict, fail_on) is fails


def test_fail_on_refuses_other_words():
    with pytest.raises(ValueError, match='oncall_fail_on must be one of'):
        f.fails('critical', 'sometimes')


@pytest.mark.parametrize('args,msg', [
    (('waiting', 500, 500), 'could never be seen'),      # the daily check's "> 500 warning, > 500 critical"
    (('waiting', 600, 500), 'could never be seen'),
    (('failure ratio', 1.5, None, True, 1.0), 'could never be reached'),
    (('hit rate', 50, 70, False), 'could never be seen'),
    (('waiting', float('nan'), None), 'finite number')])
def test_thresholds_that_can_never_fire_are_refused(args, msg):
    with pytest.raises(ValueError, match=msg):
        f.check_thresholds(*args)


def test_sound_thresholds_pass():
    f.check_thresholds('waiting', 100, 500)
    f.check_thresholds('hit rate', 70, 50, higher_is_worse=False)
    f.check_thresholds('failure ratio', 0.05, None, True, 1.0)


def test_no_playbook_or_role_computes_a_worst_verdict_by_hand():
    """The worst verdict of findings comes from the worst_verdict filter everywhere. The Jinja it
    replaced ("critical if any critical, else warning if any warning, else ok") was written nine
    times and called a run whose findings were all unknown "ok"."""
    import glob
    import os
    import re
    from helpers.paths import ROOT as root
    by_hand = re.compile(r"'critical'\s+if\s+(?:[\w.]+\s*\|\s*selectattr\('verdict'|'critical'\s+in\s)")
    found = []
    for path in glob.glob(os.path.join(root, 'playbooks', '**', '*.yml'), recursive=True) + \
            glob.glob(os.path.join(root, 'roles', '**', '*.yml'), recursive=True):
        with open(path) as handle:
            if by_hand.search(handle.read()):
                found.append(os.path.relpath(path, root))
    assert found == []
