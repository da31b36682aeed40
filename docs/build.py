# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writes the project's own documentation pages (RST) next to antsibull-docs' module and role
pages, and fails on a broken reference.

    python docs/build.py RST_DIR

Pages: one per playbook of awx/catalog.yml (what it diagnoses - the playbook's header - its job
templates, remediation and survey switches, the alerts that launch it, its schedule and a sample
report from docs/samples/), the AWX objects, and the "runbook section -> playbook" table for
every section of the five source runbooks. docs/runbook_sections.yml is the source of that
table: the build needs nothing outside the repository.

Exit 1 with one line per problem when: a path in docs/runbook_sections.yml or in the catalog
does not exist; a playbook there is not in the catalog; an entry has neither playbooks, planned
nor none; a sample report is missing for a playbook that names one. Where the source runbooks
are present (the directory of 000_*.txt ... 004_*.txt named by $ONCALL_RUNBOOK_SOURCES; the
development checkout's test run sets it), it also fails when a section of theirs has no entry
or an entry names no section; without them it says so and skips that comparison.
"""

from __future__ import annotations

import glob
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, '.collections'))

from ansible_collections.oncall.runbooks.plugins.module_utils.awx import catalog as awx_catalog  # noqa: E402

GENERIC = {'Symptoms', 'Diagnosis', 'Resolution', 'Resolution Steps', 'Prevention', 'Post-Incident',
           'Expected Results'}


def sources_dir():
    """The directory of the source runbooks (000_*.txt ... 004_*.txt) named by
    $ONCALL_RUNBOOK_SOURCES, or None when it is unset or holds none."""
    path = os.environ.get('ONCALL_RUNBOOK_SOURCES', '')
    if path and glob.glob(os.path.join(path, '[0-9][0-9][0-9]_*.txt')):
        return os.path.abspath(path)
    return None


def split_mapping(mapping):
    """docs/runbook_sections.yml as ({'000': title, ...}, {'000': {section: entry}, ...})."""
    mapping = dict(mapping)
    titles = mapping.pop('titles', None) or {}
    return titles, mapping


def clean(title):
    """A heading without emoji and other non-ASCII characters, spaces collapsed."""
    return ' '.join(''.join(c for c in title if ord(c) < 128).split())


def runbook_sections():
    """{'000': [section key, ...], ...}: headings of levels 2-4 outside code blocks, nested ones
    joined with ' / ', generic sub-headings (Symptoms, Diagnosis, ...) left to their section."""
    out = {}
    for path in sorted(glob.glob(os.path.join(sources_dir(), '[0-9][0-9][0-9]_*.txt'))):
        num = os.path.basename(path)[:3]
        fence, trail, keys = False, {}, []
        with open(path, encoding='utf-8') as f:
            for line in f:
                if line.lstrip().startswith('```'):
                    fence = not fence
                    continue
                m = None if fence else re.match(r'^(#{2,4}) (.*)', line)
                if not m:
                    continue
                level, title = len(m.group(1)), clean(m.group(2))
                trail = {k: v for k, v in trail.items() if k < level}
                trail[level] = title
                if title not in GENERIC:
                    key = ' / '.join(trail[k] for k in sorted(trail))
                    if key not in keys:
                        keys.append(key)
        out[num] = keys
    return out


def runbook_titles():
    out = {}
    for path in sorted(glob.glob(os.path.join(sources_dir(), '[0-9][0-9][0-9]_*.txt'))):
        with open(path, encoding='utf-8') as f:
            first = f.readline()
        out[os.path.basename(path)[:3]] = clean(first.lstrip('#'))
    return out


def load_yaml(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return yaml.safe_load(f)


def slug(playbook):
    return os.path.splitext(os.path.basename(playbook))[0]


def playbook_header(playbook):
    """The comment block at the top of a playbook (after ---)."""
    lines = []
    with open(os.path.join(ROOT, playbook)) as f:
        for line in f:
            if line.startswith('---'):
                continue
            if not line.startswith('#'):
                break
            lines.append(line[1:].rstrip()[1:] if line[1:2] == ' ' else line[1:].rstrip())
    return lines


def check(catalog, mapping, sections=None, source_titles=None):
    """Problems of docs/runbook_sections.yml and awx/catalog.yml, one sentence each. sections and
    source_titles: runbook_sections() and runbook_titles() of the source runbooks, or None where
    they are absent (then the map is checked on its own: paths, catalog entries, the kind of
    each entry)."""
    errors = []
    titles, mapping = split_mapping(mapping)
    for num, title in (source_titles or {}).items():
        if titles.get(num) != title:
            errors.append('docs/runbook_sections.yml: the title of runbook %s is "%s", not "%s"' % (num, title, titles.get(num)))
    entries = {e['playbook']: e for e in catalog['job_templates']}
    for path in entries:
        if not os.path.isfile(os.path.join(ROOT, path)):
            errors.append('awx/catalog.yml: %s does not exist' % path)
    for num in mapping:
        if num not in titles:
            errors.append('docs/runbook_sections.yml: runbook %s has no title under titles' % num)
    for num, keys in (sections or {}).items():
        for key in keys:
            if key not in (mapping.get(num) or {}):
                errors.append('docs/runbook_sections.yml: runbook %s section "%s" has no entry' % (num, key))
    for num, given in mapping.items():
        for key, entry in (given or {}).items():
            if sections is not None and key not in sections.get(num, []):
                errors.append('docs/runbook_sections.yml: runbook %s has no section "%s"' % (num, key))
            if not isinstance(entry, dict) or not (entry.get('playbooks') or entry.get('planned') or entry.get('none')):
                errors.append('docs/runbook_sections.yml: %s "%s" needs playbooks, planned or none' % (num, key))
                continue
            for path in entry.get('playbooks') or []:
                if not os.path.isfile(os.path.join(ROOT, path)):
                    errors.append('docs/runbook_sections.yml: %s "%s": %s does not exist' % (num, key, path))
                elif path not in entries:
                    errors.append('docs/runbook_sections.yml: %s "%s": %s has no entry in awx/catalog.yml' % (num, key, path))
            for path in entry.get('planned') or []:
                if os.path.isfile(os.path.join(ROOT, path)) and path not in entries:
                    errors.append('docs/runbook_sections.yml: %s "%s": %s exists now: add it to awx/catalog.yml' % (num, key, path))
    for num in mapping:
        if sections is not None and num not in sections:
            errors.append('docs/runbook_sections.yml: no runbook %s in the sources' % num)
    for entry in catalog['job_templates']:
        sample = entry.get('sample_report')
        if sample and not os.path.isfile(os.path.join(ROOT, 'docs', 'samples', sample)):
            errors.append('awx/catalog.yml: %s: docs/samples/%s does not exist' % (entry['name'], sample))
    return errors


def rst_escape(text):
    text = re.sub(r'([\\`*_|])', r'\\\1', str(text))
    # "1. System Health Checks" would start an enumerated list
    return re.sub(r'^(\d+)\.', r'\1\\.', text)


def heading(text, char):
    return '%s\n%s\n\n' % (text, char * len(text))


def ref_playbook(path, entries):
    if path in entries:
        return ':ref:`%s <runbook_%s>`' % (rst_escape(path), slug(path))
    return '``%s``' % path


def table(header, rows):
    out = '.. list-table::\n   :header-rows: 1\n   :widths: %s\n\n' % ' '.join(['1'] * len(header))
    for row in [header] + rows:
        out += '   * - %s\n' % (row[0] or '\\-')
        for cell in row[1:]:
            out += '     - %s\n' % (cell or '\\-')
    return out + '\n'


def page_for(entry, catalog, objects, entries, samples_dir):
    name = slug(entry['playbook'])
    out = '.. _runbook_%s:\n\n' % name
    out += heading(rst_escape(entry['name']), '=')
    out += '``%s`` - %s\n\n' % (entry['playbook'], rst_escape(entry.get('summary', '')))
    if entry.get('runbook'):
        out += '**Runbook sections:** %s\n\n' % rst_escape(entry['runbook'])
    out += heading('What it does', '-')
    header = playbook_header(entry['playbook'])
    out += '.. code-block:: text\n\n' + ''.join('    %s\n' % ln for ln in header) + '\n' if header else 'See the playbook.\n\n'
    out += heading('Remediation', '-')
    if entry.get('remediation'):
        out += ('Only with ``--tags remediate`` (AWX: the *%s - remediate* job template); the default run '
                'is the read-only diagnosis.\n\n%s\n\n') % (rst_escape(entry['name']), rst_escape(' '.join(entry['remediation'].split())))
    else:
        out += 'None: this playbook has no ``remediate`` tag.\n\n'
    out += heading('Switches (survey)', '-')
    if entry.get('switches'):
        out += table(['Variable', 'Question', 'Type', 'Default', 'Required'],
                     [['``%s``' % s['variable'], rst_escape(s.get('question', '')), s.get('type', 'text'),
                       '``%s``' % s['default'] if s.get('default') not in (None, '') else '', 'yes' if s.get('required') else 'no']
                      for s in entry['switches']])
    else:
        out += 'No survey.\n\n'
    if entry.get('awx') is not False:
        out += heading('AWX', '-')
        jts = [t for t in objects['job_templates'] if t['playbook'] == entry['playbook']]
        rows = [['**%s**' % rst_escape(t['name']), '``%s``' % t['job_tags'] if t['job_tags'] else 'all but ``never``',
                 ', '.join(rst_escape(c) for c in t['credentials'])] for t in jts]
        out += table(['Job template', 'Tags', 'Credentials'], rows)
        sched = [s for s in objects['schedules'] if s['unified_job_template'] == entry['name']]
        for s in sched:
            out += 'Schedule *%s*: ``%s``\n\n' % (rst_escape(s['name']), s['rrule'])
    alerts = sorted(a for a, t in objects['alerts'].items() if t['playbook'] == entry['playbook'])
    if alerts:
        out += heading('Alerts that start it', '-')
        out += ', '.join('``%s``%s' % (a, ' (remediates)' if objects['alerts'][a]['remediate'] else '') for a in alerts) + '\n\n'
    out += heading('Sample report', '-')
    sample = os.path.join(samples_dir, name + '.md')
    if os.path.isfile(sample):
        with open(sample) as f:
            body = f.read()
        out += 'From a run against the lab (``reports/%s-latest.md``):\n\n.. code-block:: markdown\n\n' % name
        out += ''.join('    %s\n' % ln if ln.strip() else '\n' for ln in body.splitlines()) + '\n'
    else:
        out += 'None recorded yet: run the playbook against the lab and copy ``reports/%s-latest.md`` to ``docs/samples/%s.md``.\n\n' % (name, name)
    return out


def sections_page(mapping, entries):
    titles, mapping = split_mapping(mapping)
    out = '.. _runbook_sections:\n\n' + heading('Runbook section to playbook', '=')
    out += ('Every section of the five source runbooks and the playbook that runs it. *Planned* '
            'playbooks are being written; a section with none says why.\n\n')
    for num, given in mapping.items():
        out += heading('%s - %s' % (num, rst_escape(titles.get(num, ''))), '-')
        rows = []
        for key, entry in given.items():
            cells = [ref_playbook(p, entries) for p in entry.get('playbooks') or []]
            for p in entry.get('planned') or []:
                cells.append(ref_playbook(p, entries) if p in entries else 'planned: ``%s``' % p)
            why = entry.get('none') or entry.get('note') or ''
            rows.append([rst_escape(key), ', '.join(cells) if cells else 'none', rst_escape(why)])
        out += table(['Section', 'Playbook', 'Notes'], rows)
    return out


def awx_page(catalog, objects):
    out = '.. _awx_objects:\n\n' + heading('AWX job templates, schedules and alerts', '=')
    out += ('``playbooks/awx_configure.yml`` applies ``awx/catalog.yml`` with the awx.awx modules '
            '(``-e oncall_awx_host=... -e @vault.yml``; ``--check`` first). Credentials use custom '
            'types that inject their secrets as extra vars and environment variables, never files.\n\n')
    out += heading('Job templates', '-')
    out += table(['Job template', 'Playbook', 'Tags', 'Survey'],
                 [[rst_escape(t['name']), ref_playbook(t['playbook'], {e['playbook'] for e in catalog['job_templates']}),
                   '``remediate``' if t['job_tags'] else '', ', '.join('``%s``' % q['variable'] for q in (t['survey_spec'] or {}).get('spec', []))]
                  for t in objects['job_templates']])
    out += heading('Schedules', '-')
    out += table(['Schedule', 'Job template', 'rrule'],
                 [[rst_escape(s['name']), rst_escape(s['unified_job_template']), '``%s``' % s['rrule']] for s in objects['schedules']])
    out += heading('Credential types', '-')
    out += table(['Type', 'Injected as'],
                 [[rst_escape(ct['name']), ', '.join('``%s``' % k for kind in ('extra_vars', 'env') for k in ct['injectors'].get(kind, {}))]
                  for ct in objects['credential_types']])
    out += heading('Alerts', '-')
    out += ('``extensions/eda/rulebooks/alerts.yml`` receives Alertmanager webhooks (source '
            '``oncall.runbooks.alertmanager``) and runs ``playbooks/alert_runbook.yml``, which starts '
            'the mapped runbook; the same alert runs at most once within %s.\n\n' % catalog['alert_cooldown'])
    out += table(['Alert', 'Job template', 'Remediates', 'Runbook'],
                 [['``%s``' % a, rst_escape(t['job_template']), 'yes' if t['remediate'] else 'no', rst_escape(t['source'])]
                  for a, t in objects['alerts'].items()])
    return out


INDEX = """\
.. _docsite_root_index:

oncall.runbooks
===============

Operations runbooks as idempotent, check-mode-safe playbooks. Each page below is generated
from the code: the modules' and roles' own documentation (antsibull-docs), the AWX catalog
(``awx/catalog.yml``) and the playbooks.

.. toctree::
   :maxdepth: 1
   :caption: Runbooks and playbooks:

%s

.. toctree::
   :maxdepth: 1
   :caption: Operations:

   runbook_sections
   awx

.. toctree::
   :maxdepth: 1
   :caption: Reference notes (docs/*.md):

%s

.. toctree::
   :maxdepth: 2
   :caption: Modules, roles, plugins and guides:

   collections/index

.. toctree::
   :maxdepth: 1
   :caption: Reference indexes:
   :glob:

   collections/index_*
   collections/environment_variables
   ansible_references
"""

# Labels antsibull-docs' pages point at in the Ansible docsite (no intersphinx: offline build).
ANSIBLE_REFERENCES = """\
Ansible references
==================

.. _common_return_values:

Common return values
--------------------

Every module also returns Ansible's common values (``changed``, ``failed``, ``msg``, ...):
see "Return Values" in the Ansible documentation (docs.ansible.com).

.. _ansible_configuration_settings:

Ansible configuration settings
------------------------------

See "Ansible Configuration Settings" in the Ansible documentation (docs.ansible.com).
"""


def notes_page(path):
    """A page showing one of the reference notes docs/*.md (security, certificates, postgres,
    queues, redis, the fault matrix) as it is, Markdown source included verbatim."""
    with open(path, encoding='utf-8') as f:
        body = f.read()
    title = next((ln.lstrip('#').strip() for ln in body.splitlines() if ln.startswith('#')), os.path.basename(path))
    rel = os.path.relpath(path, ROOT)
    out = '.. _notes_%s:\n\n' % slug(path) + heading(rst_escape(title), '=')
    out += '``%s``, shipped with the collection, shown as it is written:\n\n.. code-block:: markdown\n\n' % rel
    out += ''.join('    %s\n' % ln if ln.strip() else '\n' for ln in body.splitlines()) + '\n'
    return out


def main(argv):
    if len(argv) != 2:
        raise SystemExit('usage: docs/build.py RST_DIR')
    dest = argv[1]
    catalog = load_yaml('awx/catalog.yml')
    mapping = load_yaml('docs/runbook_sections.yml')
    if sources_dir():
        sections, source_titles = runbook_sections(), runbook_titles()
        print('docs: docs/runbook_sections.yml checked against the source runbooks in %s' % sources_dir())
    else:
        sections = source_titles = None
        print('docs: source runbooks not present (ONCALL_RUNBOOK_SOURCES): docs/runbook_sections.yml '
              'is rendered as it is, without comparing it to their sections')
    errors = check(catalog, mapping, sections, source_titles)
    if errors:
        for err in errors:
            print('docs: ' + err, file=sys.stderr)
        return 1
    objects = awx_catalog.expand(catalog)
    entries = {e['playbook'] for e in catalog['job_templates']}
    os.makedirs(os.path.join(dest, 'runbooks'), exist_ok=True)
    names = []
    for entry in catalog['job_templates']:
        name = slug(entry['playbook'])
        names.append(name)
        with open(os.path.join(dest, 'runbooks', name + '.rst'), 'w') as f:
            f.write(page_for(entry, catalog, objects, entries, os.path.join(ROOT, 'docs', 'samples')))
    with open(os.path.join(dest, 'runbook_sections.rst'), 'w') as f:
        f.write(sections_page(mapping, entries))
    with open(os.path.join(dest, 'awx.rst'), 'w') as f:
        f.write(awx_page(catalog, objects))
    with open(os.path.join(dest, 'ansible_references.rst'), 'w') as f:
        f.write(ANSIBLE_REFERENCES)
    os.makedirs(os.path.join(dest, 'notes'), exist_ok=True)
    notes = sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md')))
    for path in notes:
        with open(os.path.join(dest, 'notes', slug(path) + '.rst'), 'w', encoding='utf-8') as f:
            f.write(notes_page(path))
    with open(os.path.join(dest, 'index.rst'), 'w') as f:
        f.write(INDEX % ('\n'.join('   runbooks/%s' % n for n in names),
                         '\n'.join('   notes/%s' % slug(p) for p in notes)))
    print('docs: %d playbook pages, %d runbook sections' % (len(names), sum(len(v) for v in split_mapping(mapping)[1].values())))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
