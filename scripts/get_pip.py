# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test builds an empty virtualenv (``python -m venv --without-pip``) for each sanity test and
bootstraps pip into it by running ``get-pip-<version>.py``, which it first downloads from a host
this machine cannot reach. It looks for that script in its cache first
(``~/.ansible/test/cache/get_pip_<version with _>.py``); ``scripts/test`` copies this file there.

ansible-test runs it (through its ``quiet_pip.py``) with the virtualenv's Python and the same
arguments as the real get-pip.py, e.g. ``--disable-pip-version-check pip==24.2 --no-setuptools
--no-wheel``. This script installs the pip wheel bundled with the interpreter (``ensurepip``, no
network), then uses that pip to install the requested packages (the pinned pip) from the
package index, and honours ``--no-setuptools``/``--no-wheel`` by removing what ensurepip added.
"""

from __future__ import annotations

import os
import subprocess
import sys

GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')


def run(cmd, env):
    """Run cmd; on failure print its output and exit with its code."""
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode:
        sys.stdout.write(proc.stdout.decode('utf-8', 'replace'))
        sys.stdout.write('get_pip (offline bootstrap): command failed: %s\n' % ' '.join(cmd))
        sys.exit(proc.returncode)


def main():
    args = sys.argv[1:]
    pip_args = [arg for arg in args if arg not in GET_PIP_ONLY]
    env = dict(os.environ)
    env.pop('GET_PIP', None)
    env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'

    run([sys.executable, '-m', 'ensurepip', '--default-pip'], env)
    run([sys.executable, '-m', 'pip', 'install', '--quiet'] + pip_args, env)

    remove = []
    if '--no-setuptools' in args:
        remove.append('setuptools')
    if '--no-wheel' in args:
        remove.append('wheel')
    if remove:
        run([sys.executable, '-m', 'pip', 'uninstall', '--quiet', '--yes'] + remove, env)


if __name__ == '__main__':
    main()
