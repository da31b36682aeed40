# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where reports and deploy records go, one rule for every role; documented in report_dir.yml."""

from __future__ import annotations

import os


def _current_directory():
    """The shell's $PWD when it names the current directory (it keeps symbolic links), else getcwd()."""
    pwd = os.environ.get('PWD', '')
    try:
        if os.path.isabs(pwd) and os.path.samefile(pwd, '.'):
            return pwd
    except OSError:
        pass
    return os.getcwd()


def report_dir(value, base=None):
    """The configured directory (oncall_report_dir), else $ONCALL_REPORT_DIR, else <base>/reports,
    base being the current directory unless given."""
    for candidate in (value, os.environ.get('ONCALL_REPORT_DIR')):
        if candidate is not None and str(candidate).strip():
            return str(candidate)
    return os.path.join(str(base) if base else _current_directory(), 'reports')


class FilterModule(object):
    def filters(self):
        return {'report_dir': report_dir}
