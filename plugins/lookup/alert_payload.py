# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Alertmanager alert given to a playbook, read as data (never templated) and validated."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: alert_payload
short_description: The Alertmanager alert given to a playbook, read as data and validated
version_added: 0.1.0
author:
  - oncall.runbooks maintainers (@oncall-runbooks)
description:
  - Reads the first defined of the variables named in the terms (dotted paths such as
    C(ansible_eda.event.alert)) B(without templating it). Ansible trusts extra vars (C(-e),
    C(-e @file), the extravars file ansible-rulebook and ansible-runner pass) as templates, so
    C({{ oncall_alert }}) would render any C({{ ... }}) or C({% ... %}) a monitored target put
    in a label or annotation; this lookup reads the raw value and returns it untrusted (data).
  - "Validates the alert the way C(playbooks/alert_runbook.yml) uses it. It must be a mapping;
    C(labels) a mapping of label names (C([A-Za-z_][A-Za-z0-9_]*)) to names or numbers
    (letters, digits and C(_ . : @ + -), at most 128 characters, not starting with C(-) or C(.));
    C(labels.alertname) a Prometheus alert name (C([A-Za-z_:][A-Za-z0-9_:]*), at most 128);
    C(status) V(firing) or V(resolved) (missing means V(firing)); C(annotations) a mapping of
    label names to text (at most 65536 characters each); C(startsAt) and C(endsAt) RFC 3339
    times; C(fingerprint) letters and digits. Other keys are dropped."
  - Never fails on a bad alert; C(error) then says in one sentence what was refused, and the
    playbook runs nothing.
options:
  _terms:
    description: Variable paths to read, in order; the first one that is defined is the alert.
    type: list
    elements: str
    required: true
notes:
  - The returned values are not trusted for templating, and C(extra_vars) tags the alert
    C(!unsafe), so the runbook that loads it with C(-e @file) cannot render any of it either.
"""

EXAMPLES = r"""
- name: Read the alert as data
  ansible.builtin.set_fact:
    alert_in: "{{ lookup('oncall.runbooks.alert_payload', 'oncall_alert', 'ansible_eda.event.alert') }}"

- name: Refuse it when it does not fit
  ansible.builtin.debug:
    msg: "{{ alert_in.error }}"
  when: alert_in.error | length > 0
"""

RETURN = r"""
_raw:
  description: One dict.
  type: list
  elements: dict
  contains:
    error:
      description: Empty, or one sentence saying why the alert is refused (ending with "nothing was run").
      type: str
    source:
      description: The variable path the alert was read from (empty when none was defined).
      type: str
    alertname:
      description: C(labels.alertname) as given (a string; JSON text when it is not one).
      type: str
    status:
      description: V(firing) or V(resolved) (as given, when refused).
      type: str
    alert:
      description:
        - The alert (C(status), C(labels), C(annotations), C(startsAt), C(endsAt), C(fingerprint),
          C(generatorURL)); empty when it was refused.
      type: dict
    labels_json:
      description: The labels as given, as JSON text with sorted keys (for the dispatch report).
      type: str
    summary:
      description: The C(summary) annotation as given (JSON text when it is not a string).
      type: str
    extra_vars:
      description:
        - A YAML document (C(oncall_alert) and the alert) with the alert tagged C(!unsafe), for
          the runbook to load with C(-e @file); empty when the alert was refused.
      type: str
"""

import json
import re

import yaml

from ansible.plugins.lookup import LookupBase
from ansible.utils.unsafe_proxy import wrap_var

LABEL_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')
ALERT_NAME = re.compile(r'[A-Za-z_:][A-Za-z0-9_:]{0,127}\Z')
# a name or a number: what a runbook may use as a queue, host, instance or job name
LABEL_VALUE = re.compile(r'(?:[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,127})?\Z')
TIMESTAMP = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)\Z')
FINGERPRINT = re.compile(r'[A-Za-z0-9]{0,64}\Z')
MAX_LABELS = 64
MAX_ANNOTATION = 65536
MAX_URL = 4096
STATUSES = ('firing', 'resolved')
_MISSING = object()


class Refused(ValueError):
    pass


def plain(value):
    """A copy made of new dicts, lists and str objects: nothing of the input's trust (tags) left."""
    if isinstance(value, dict):
        return dict((plain_key(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return ''.join(list(value))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return '%s' % (value,)


def plain_key(key):
    return ''.join(list(key)) if isinstance(key, str) else json.dumps(plain(key))


def shown(value, limit=80):
    """A value quoted for a one-sentence message (JSON, cut at limit characters)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + '...'


def text_of(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def utf8(value, what):
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise Refused('%s is not UTF-8 text' % what)
    return value


def check_mapping(value, what, value_check):
    if not isinstance(value, dict):
        raise Refused('%s is not a mapping (got %s)' % (what, shown(value)))
    if len(value) > MAX_LABELS:
        raise Refused('%s has %d entries (at most %d)' % (what, len(value), MAX_LABELS))
    out = {}
    for key, item in sorted(value.items(), key=lambda kv: str(kv[0])):
        if not isinstance(key, str) or not LABEL_NAME.match(key):
            raise Refused('%s name %s is not a label name (letters, digits and _, not starting with a digit)'
                          % (what.rstrip('s'), shown(key)))
        out[key] = value_check(key, item)
    return out


def label_value(key, item):
    if not isinstance(item, str):
        raise Refused('label %s is not a string (got %s)' % (key, shown(item)))
    utf8(item, 'label %s' % key)
    if key == 'alertname':
        if not ALERT_NAME.match(item):
            raise Refused('alertname %s is not an alert name (letters, digits, _ and :, at most 128)' % shown(item))
    elif not LABEL_VALUE.match(item):
        raise Refused('label %s value %s is not a name or number (letters, digits and _ . : @ + -, '
                      'at most 128, not starting with - or .)' % (key, shown(item)))
    return item


def annotation_value(key, item):
    if not isinstance(item, str):
        raise Refused('annotation %s is not a string (got %s)' % (key, shown(item)))
    utf8(item, 'annotation %s' % key)
    if len(item) > MAX_ANNOTATION:
        raise Refused('annotation %s is %d characters long (at most %d)' % (key, len(item), MAX_ANNOTATION))
    return item


def validate(raw):
    """The alert as the runbooks may use it (Refused with the reason otherwise)."""
    if not isinstance(raw, dict):
        raise Refused('the alert is not a mapping (got %s)' % shown(raw))
    labels = check_mapping(raw.get('labels', {}), 'labels', label_value)
    if 'alertname' not in labels:
        raise Refused('the alert has no alertname label')
    annotations = check_mapping(raw.get('annotations') or {}, 'annotations', annotation_value)
    status = raw.get('status', 'firing')
    if status not in STATUSES:
        raise Refused('status %s is neither firing nor resolved' % shown(status))
    alert = {'status': status, 'labels': labels, 'annotations': annotations}
    for key, pattern, limit, what in (('startsAt', TIMESTAMP, 64, 'an RFC 3339 time'),
                                      ('endsAt', TIMESTAMP, 64, 'an RFC 3339 time'),
                                      ('fingerprint', FINGERPRINT, 64, 'letters and digits'),
                                      ('generatorURL', None, MAX_URL, 'a URL of at most %d characters' % MAX_URL)):
        if key not in raw or raw[key] is None:
            continue
        value = raw[key]
        if not isinstance(value, str) or len(value) > limit or (pattern and not pattern.match(value)):
            raise Refused('%s %s is not %s' % (key, shown(value), what))
        alert[key] = utf8(value, key)
    return alert


class _UnsafeMapping(dict):
    pass


class _Dumper(yaml.SafeDumper):
    pass


# `!unsafe` on the mapping: Ansible's loader marks everything under it untrusted and still
# resolves each scalar as usual ('123' stays a string); `!unsafe` on each scalar would not
# (Ansible re-resolves an !unsafe scalar as if it were plain: '123' would become 123)
_Dumper.add_representer(_UnsafeMapping, lambda dumper, data: dumper.represent_mapping('!unsafe', dict(data)))


def unsafe_extra_vars(name, value):
    """A YAML extra-vars document {name: value} whose value (all of it) is tagged !unsafe."""
    return yaml.dump({name: _UnsafeMapping(value)}, Dumper=_Dumper, allow_unicode=True,
                     default_flow_style=False, sort_keys=True, width=1 << 30)


def read_path(variables, path):
    value = variables
    for part in path.split('.'):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = dict.get(value, part)
    return value


def alert_payload(variables, paths):
    """The lookup's one result for these variables (plain Python, for tests)."""
    source, raw = '', _MISSING
    for path in paths:
        value = read_path(variables, path)
        if value is not _MISSING and value is not None:
            source, raw = path, value
            break
    raw = plain(raw) if raw is not _MISSING else _MISSING
    labels = raw.get('labels') if isinstance(raw, dict) else None
    annotations = raw.get('annotations') if isinstance(raw, dict) else None
    alertname = labels.get('alertname', '') if isinstance(labels, dict) else ''
    result = {
        'source': source, 'error': '', 'alert': {},
        'alertname': text_of(alertname),
        'status': text_of(raw.get('status', 'firing')) if isinstance(raw, dict) else '',
        'labels_json': json.dumps(labels, sort_keys=True, ensure_ascii=False) if labels is not None else '',
        'summary': text_of(annotations.get('summary', '')) if isinstance(annotations, dict) else '',
        'extra_vars': '',
    }
    try:
        if raw is _MISSING:
            raise Refused('no alert was given (%s)' % ' or '.join(paths))
        alert = validate(raw)
        result['extra_vars'] = unsafe_extra_vars('oncall_alert', alert)
    except Refused as exc:
        result['error'] = 'alert refused: %s; nothing was run' % exc
        return result
    result['alert'] = alert
    return result


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        # `variables` holds the values as loaded, before templating: reading them here is what
        # keeps a template in an alert from being rendered
        return [wrap_var(alert_payload(variables or {}, [str(t) for t in terms]))]
