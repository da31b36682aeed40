# -*- coding: utf-8 -*-
"""docs/build.sh: antsibull-docs renders the modules, the filter, the roles and the docsite
guides, docs/build.py the playbook pages, the reference notes and the runbook section ->
playbook table, Sphinx the HTML (-n -W); and the build fails on a section without an entry, a
path that does not exist, or a broken reference.

The build needs nothing outside the repository: docs/runbook_sections.yml is the source of the
table. The source runbooks are compared with it only where they are present: beside a
development checkout, ../shared/runbook-sources, handed to the build as ONCALL_RUNBOOK_SOURCES
(a fresh clone without them compares the map with itself, and test_build_without_the_sources
shows the build works and says so)."""

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

from helpers import ROOT, _env

sys.path.insert(0, os.path.join(ROOT, 'docs'))
import build as docs_build  # noqa: E402  pylint: disable=wrong-import-position

HTML = os.path.join(ROOT, 'docs', '_build', 'html')
SOURCES = os.path.abspath(os.path.join(ROOT, '..', 'shared', 'runbook-sources'))
HAVE_SOURCES = os.path.isdir(SOURCES)


def docs_env(sources=HAVE_SOURCES):
    env = _env()
    env.pop('ONCALL_RUNBOOK_SOURCES', None)
    if sources:
        env['ONCALL_RUNBOOK_SOURCES'] = SOURCES
    return env


def sections():
    """The sections to compare with: the source runbooks' where present, else the map's own."""
    if HAVE_SOURCES:
        os.environ['ONCALL_RUNBOOK_SOURCES'] = SOURCES
        return docs_build.runbook_sections()
    return {num: list(given) for num, given in docs_build.split_mapping(load('docs/runbook_sections.yml'))[1].items()}


@pytest.fixture(scope='module')
def built():
    proc = subprocess.run(['bash', os.path.join(ROOT, 'docs', 'build.sh')], cwd=ROOT, env=docs_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if HAVE_SOURCES:
        assert 'checked against the source runbooks in %s' % SOURCES in proc.stdout
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
    found = sections()
    assert sum(len(v) for v in found.values()) > 100
    for num, keys in found.items():
        for key in keys:
            assert key in page, (num, key)
    assert 'planned: playbooks/runbooks/cache_health.yml' in page or 'cache_health' in page
    assert 'people and phone numbers' in page


def load(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return yaml.safe_load(f)


def test_a_missing_or_stale_section_and_a_missing_path_are_errors():
    catalog, mapping, found = load('awx/catalog.yml'), load('docs/runbook_sections.yml'), sections()
    assert docs_build.check(catalog, mapping, found) == []
    assert docs_build.check(catalog, mapping, None) == []
    broken = copy.deepcopy(mapping)
    del broken['002']['Queue Backlog']
    broken['001']['No Such Section'] = {'none': 'x'}
    broken['000']['Overview'] = {'playbooks': ['playbooks/nope.yml']}
    broken['003']['Memory Leaks'] = {'note': 'only a note'}
    errors = docs_build.check(catalog, broken, found)
    assert 'docs/runbook_sections.yml: runbook 002 section "Queue Backlog" has no entry' in errors
    assert 'docs/runbook_sections.yml: runbook 001 has no section "No Such Section"' in errors
    assert 'docs/runbook_sections.yml: 000 "Overview": playbooks/nope.yml does not exist' in errors
    assert 'docs/runbook_sections.yml: 003 "Memory Leaks" needs playbooks, planned or none' in errors
    bad_catalog = copy.deepcopy(catalog)
    bad_catalog['job_templates'][0]['playbook'] = 'playbooks/gone.yml'
    assert 'awx/catalog.yml: playbooks/gone.yml does not exist' in docs_build.check(bad_catalog, mapping, found)
    # without the sources, the map is still checked on its own
    errors = docs_build.check(catalog, broken, None)
    assert 'docs/runbook_sections.yml: 000 "Overview": playbooks/nope.yml does not exist' in errors
    assert 'docs/runbook_sections.yml: 003 "Memory Leaks" needs playbooks, planned or none' in errors
    assert not any('has no entry' in e or 'has no section' in e for e in errors)
    untitled = copy.deepcopy(mapping)
    del untitled['titles']['004']
    assert 'docs/runbook_sections.yml: runbook 004 has no title under titles' in docs_build.check(catalog, untitled, None)


def test_the_guides_and_the_reference_notes_are_rendered(built):
    with open(os.path.join(ROOT, 'docs', 'docsite', 'extra-docs.yml')) as f:
        guides = [g for section in yaml.safe_load(f)['sections'] for g in section['toctree']]
    assert 'guide_overview' in guides and len(guides) >= 6
    for guide in guides:
        page = text('collections/oncall/runbooks/docsite/%s.html' % guide)
        assert len(page) > 1500, guide
    assert 'Plan, then apply' in text('collections/oncall/runbooks/docsite/guide_overview.html') or \
        'plan, then apply' in text('collections/oncall/runbooks/docsite/guide_overview.html')
    assert 'deploy_lock' in text('collections/oncall/runbooks/docsite/guide_deploy.html')
    for note in ('security', 'redis', 'postgres', 'queues', 'certificates', 'fault_matrix'):
        assert os.path.isfile(os.path.join(HTML, 'notes', note + '.html')), note
    assert 'ACL SETUSER' in text('notes/redis.html')


def test_build_without_the_sources_renders_the_map_and_says_so(built, tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'docs', 'build.py'), str(tmp_path)], cwd=ROOT,
                          env=docs_env(sources=False), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'source runbooks not present' in proc.stdout
    page = (tmp_path / 'runbook_sections.rst').read_text()
    assert 'Wave 3 Operations Runbook' in page and 'people and phone numbers' in page


def test_missing_tools_say_run_scripts_setup_dev(tmp_path):
    # a copy of build.sh in a tree with no .venv and a PATH without antsibull-docs or sphinx-build
    (tmp_path / 'docs').mkdir()
    shutil.copy(os.path.join(ROOT, 'docs', 'build.sh'), tmp_path / 'docs' / 'build.sh')
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path)}
    assert not any(os.path.exists(os.path.join(d, 'antsibull-docs')) for d in env['PATH'].split(':'))
    proc = subprocess.run(['bash', str(tmp_path / 'docs' / 'build.sh')], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert 'run scripts/setup --dev' in proc.stderr
    assert 'missing antsibull-docs' in proc.stderr
    assert not (tmp_path / 'docs' / '_build').exists()


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
