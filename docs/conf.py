# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sphinx configuration of the oncall.runbooks docs (docs/build.sh). Offline: no intersphinx."""

project = 'oncall.runbooks'
copyright = 'oncall.runbooks contributors'  # pylint: disable=redefined-builtin
title = 'oncall.runbooks'
html_short_title = 'oncall.runbooks'

extensions = ['sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
# every reference must resolve: a broken one is a warning, and build.sh turns warnings into errors
nitpicky = True
