# -*- coding: utf-8 -*-
"""docs/build.sh: antsibull-docs renders the modules, the filter and the roles, docs/build.py
the playbook pages and the runbook section -> playbook table, Sphinx the HTML (-n -W); and the
build fails on a section without an entry, a path that does not exist, or a broken reference."""

from __future__ import annotations

import copy
import html
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, _env

sys.path.insert(0, os.path.join(ROOT, 'docs'))
import build as docs_build  # noqa: E402  pylint: disable=wrong-import-position

HTML = os.path.join(ROOT, 'docs', '_build', 'html')


@pytest.fixture(scope='module')
def built():
    proc = subprocess.run(['bash', os.path.join(ROOT, 'docs', 'build.sh')], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def text(rel):
    with open(os.path.join(HTML, rel), encoding='utf-8') as f:
        return html.unescape(re.sub(r'<[^>]+>', ' ', f.read()))


def test_modules_and_roles_are_rendered_from_their_own_documentation(built):
    redis_queue = text('collections/oncall/runbooks/redis_queue_module.html')
    assert 'requeue_from' in redis_queue and 'Return Values' in redis_queue
    # every module of plugins/modules has its page
    for name in os.listdir(os.path.join(ROOT, 'plugins', 'modules')):
        if name.endswith('.py') and not name.startswith('_'):
            assert os.path.isfile(os.path.join(HTML, 'collections/oncall/runbooks/%s_module.html' % name[:-3])), name
    for role in os.listdir(os.path.join(ROOT, 'roles')):
        page = text('collections/oncall/runbooks/%s_role.html' % role)
        assert 'Entry point' in page and 'did not return correct' not in page, role
    assert 'oncall_redis_user' in text('collections/oncall/runbooks/queues_role.html')
    assert 'secrets' in text('collections/oncall/runbooks/awx_objects_filter.html')


def test_a_page_per_playbook_with_switches_alerts_and_a_sample_report(built):
    page = text('runbooks/payment_failure.html')
    assert 'payments_incident' in page and 'Runbook - payment failure - remediate' in page
    assert 'HighPaymentFailureRate' in page and '--tags remediate' in page
    daily = text('runbooks/daily_health_check.html')
    assert 'DatabaseDown' in daily and 'Sample report' in daily and 'PONG (Redis' in daily
    assert 'FREQ=WEEKLY' in text('runbooks/weekly_maintenance.html')


def test_every_runbook_section_is_in_the_table(built):
    page = text('runbook_sections.html')
    sections = docs_build.runbook_sections()
    assert sum(len(v) for v in sections.values()) > 100
    for num, keys in sections.items():
        for key in keys:
            assert key in page, (num, key)
    assert 'planned: playbooks/runbooks/cache_health.yml' in page or 'cache_health' in page
    assert 'people and phone numbers' in page


def load(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return yaml.safe_load(f)


def test_a_missing_or_stale_section_and_a_missing_path_are_errors():
    catalog, mapping, sections = load('awx/catalog.yml'), load('docs/runbook_sections.yml'), docs_build.runbook_sections()
    assert docs_build.check(catalog, mapping, sections) == []
    broken = copy.deepcopy(mapping)
    del broken['002']['Queue Backlog']
    broken['001']['No Such Section'] = {'none': 'x'}
    broken['000']['Overview'] = {'playbooks': ['playbooks/nope.yml']}
    broken['003']['Memory Leaks'] = {'note': 'only a note'}
    errors = docs_build.check(catalog, broken, sections)
    assert 'docs/runbook_sections.yml: runbook 002 section "Queue Backlog" has no entry' in errors
    assert 'docs/runbook_sections.yml: runbook 001 has no section "No Such Section"' in errors
    assert 'docs/runbook_sections.yml: 000 "Overview": playbooks/nope.yml does not exist' in errors
    assert 'docs/runbook_sections.yml: 003 "Memory Leaks" needs playbooks, planned or none' in errors
    bad_catalog = copy.deepcopy(catalog)
    bad_catalog['job_templates'][0]['playbook'] = 'playbooks/gone.yml'
    assert 'awx/catalog.yml: playbooks/gone.yml does not exist' in docs_build.check(bad_catalog, mapping, sections)


def test_a_broken_reference_fails_sphinx(built, tmp_path):
    rst = tmp_path / 'rst'
    shutil.copytree(os.path.join(ROOT, 'docs', '_build', 'rst'), rst)
    with open(rst / 'awx.rst', 'a') as f:
        f.write('\nSee :ref:`runbook_no_such_playbook`.\n')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'sphinx-build'), '-q', '-b', 'html',
                           '-c', os.path.join(ROOT, 'docs'), '-n', '-W', str(rst), str(tmp_path / 'html')],
                          env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode != 0
    assert 'runbook_no_such_playbook' in proc.stderr
