# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX catalog (awx/catalog.yml) expanded into the arguments of the awx.awx modules.

One entry per playbook in the catalog; everything else is derived here: the job templates
(a diagnosis template, plus "<name> - remediate" with job_tags=remediate for playbooks with a
remediation), their surveys, schedules, credentials, and the alert -> playbook mapping that
playbooks/alert_runbook.yml reads. Pure functions on plain data, shared by the awx_objects
filter, the EDA dispatcher and the docs build.
"""

from __future__ import annotations

from ansible_collections.oncall.runbooks.plugins.module_utils.common.errors import OncallError

REMEDIATE_SUFFIX = ' - remediate'
SURVEY_TYPES = ('text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect')


class CatalogError(OncallError, ValueError):
    """The catalog is inconsistent; the message names the entry and what to fix."""


def _survey(entry):
    questions = []
    for sw in entry.get('switches') or []:
        qtype = sw.get('type', 'text')
        if qtype == 'bool':
            # AWX surveys have no boolean: a yes/no switch is a choice between "false" and "true"
            qtype, choices = 'multiplechoice', ['false', 'true']
            default = 'true' if sw.get('default') in (True, 'true') else 'false'
        else:
            choices = sw.get('choices', '')
            default = sw.get('default', '')
        if qtype not in SURVEY_TYPES:
            raise CatalogError('job template %r: switch %r has type %r; use bool or one of %s'
                               % (entry['name'], sw.get('variable'), qtype, ', '.join(SURVEY_TYPES)))
        question = {
            'question_name': sw.get('question', sw['variable']),
            'question_description': sw.get('description', ''),
            'variable': sw['variable'],
            'type': qtype,
            'required': bool(sw.get('required', False)),
            'default': default,
        }
        if choices:
            question['choices'] = choices
        questions.append(question)
    if not questions:
        return None
    return {'name': entry['name'], 'description': entry.get('summary', ''), 'spec': questions}


def job_templates(catalog):
    """The job_template module arguments of every template the catalog defines."""
    out = []
    project = catalog['project']['name']
    inventory = catalog['inventory']['name']
    ee = (catalog.get('execution_environment') or {}).get('name')
    creds = catalog.get('credentials') or {}
    for entry in catalog.get('job_templates') or []:
        if entry.get('awx') is False:
            continue
        for key in entry.get('credentials') or []:
            if key not in creds:
                raise CatalogError('job template %r: credential %r is not defined under credentials'
                                   % (entry['name'], key))
        base = {
            'name': entry['name'],
            'description': entry.get('summary', ''),
            'organization': catalog['organization'],
            'project': project,
            'inventory': inventory,
            'playbook': entry['playbook'],
            'credentials': [creds[k]['name'] for k in entry.get('credentials') or []],
            'extra_vars': entry.get('extra_vars') or {},
            'ask_variables_on_launch': bool(entry.get('ask_variables_on_launch', False)),
        }
        if ee:
            base['execution_environment'] = ee
        survey = _survey(entry)
        if entry.get('remediation'):
            # The diagnosis template runs the always-tagged part only; its remediation twin runs
            # the `remediate` tag and asks for the per-step switches.
            out.append(dict(base, survey_enabled=False, survey_spec={}, job_tags=''))
            out.append(dict(base, name=entry['name'] + REMEDIATE_SUFFIX,
                            description='Remediation: ' + ' '.join(entry['remediation'].split()),
                            job_tags='remediate', survey_enabled=survey is not None,
                            survey_spec=dict(survey or {}, name=entry['name'] + REMEDIATE_SUFFIX) if survey else {}))
        else:
            out.append(dict(base, survey_enabled=survey is not None, survey_spec=survey or {}, job_tags=''))
    return out


def schedules(catalog):
    out = []
    for entry in catalog.get('job_templates') or []:
        sched = entry.get('schedule')
        if sched and entry.get('awx') is not False:
            out.append({'name': sched['name'], 'unified_job_template': entry['name'],
                        'rrule': sched['rrule'], 'organization': catalog['organization'],
                        'description': entry.get('summary', '')})
    return out


def credentials(catalog, secrets):
    """credential module arguments; ``secrets`` maps a variable name to its value."""
    out = []
    for key, cred in sorted((catalog.get('credentials') or {}).items()):
        inputs = dict(cred.get('inputs') or {})
        for field, var in (cred.get('secret_inputs') or {}).items():
            if var not in secrets:
                raise CatalogError('credential %r: secret input %r needs the variable %s (from a vault)'
                                   % (cred['name'], field, var))
            inputs[field] = secrets[var]
        out.append({'name': cred['name'], 'credential_type': cred['credential_type'],
                    'organization': catalog['organization'], 'inputs': inputs})
    return out


def credential_types(catalog):
    return [{'name': ct['name'], 'description': ct.get('description', ''), 'kind': 'cloud',
             'inputs': ct['inputs'], 'injectors': ct['injectors']}
            for ct in catalog.get('credential_types') or []]


def alerts(catalog):
    """alertname -> {job_template, playbook, remediate, source} (templates by name)."""
    by_name = dict((e['name'], e) for e in catalog.get('job_templates') or [])
    out = {}
    for alert in catalog.get('alerts') or []:
        entry = by_name.get(alert['job_template'])
        if entry is None:
            raise CatalogError('alert %r: job template %r is not in job_templates'
                               % (alert['alert'], alert['job_template']))
        remediate = bool(alert.get('remediate', False))
        if remediate and not entry.get('remediation'):
            raise CatalogError('alert %r is marked remediate but %r has no remediation'
                               % (alert['alert'], entry['name']))
        out[alert['alert']] = {
            'job_template': entry['name'] + (REMEDIATE_SUFFIX if remediate else ''),
            'playbook': entry['playbook'],
            'remediate': remediate,
            'source': alert.get('source', ''),
        }
    return out


def expand(catalog, secrets=None):
    """Every AWX object of the catalog, as module arguments, keyed by module."""
    return {
        'organization': {'name': catalog['organization']},
        'credential_types': credential_types(catalog),
        'credentials': credentials(catalog, secrets) if secrets is not None else [],
        'project': dict(catalog['project'], organization=catalog['organization']),
        'execution_environment': catalog.get('execution_environment'),
        'inventory': catalog['inventory'],
        'job_templates': job_templates(catalog),
        'schedules': schedules(catalog),
        'alerts': alerts(catalog),
    }
