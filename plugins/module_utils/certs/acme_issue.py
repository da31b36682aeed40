# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACME v2 issuance through certbot's ``acme`` library: account, order, http-01 or dns-01.

http-01 answers through a webroot (files under ``.well-known/acme-challenge/``) or a standalone
responder started here for the order; dns-01 calls a hook command (``add`` then ``remove``)
with ACME_DOMAIN, ACME_RECORD and ACME_VALUE in its environment. Every file and record made for
a challenge is removed again, whether the order succeeds or not.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import threading

from ansible_collections.oncall.runbooks.plugins.module_utils.certs import x509
from ansible_collections.oncall.runbooks.plugins.module_utils.certs.x509 import CertError
from ansible_collections.oncall.runbooks.plugins.module_utils.common.duration import format_duration, parse_duration

LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory'

try:
    import josepy as jose
    from acme import challenges, client, errors, messages
    HAS_ACME = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_ACME = False


def _account(cfg):
    path = cfg.get('account_key_path')
    if not path:
        raise CertError('acme.account_key_path is needed (the ACME account key file, created when missing)')
    if os.path.exists(path):
        with open(path, 'rb') as f:
            key = x509.load_key(f.read(), 'ACME account key %s' % path)
    else:
        from cryptography.hazmat.primitives.asymmetric import ec
        key = ec.generate_private_key(ec.SECP256R1())
        from ansible_collections.oncall.runbooks.plugins.module_utils.certs.locations import atomic_write
        atomic_write(path, x509.key_pem(key), 0o600, backup=False)
    from cryptography.hazmat.primitives.asymmetric import ec as _ec, rsa as _rsa
    if isinstance(key, _rsa.RSAPrivateKey):
        return jose.JWKRSA(key=key), jose.RS256
    if isinstance(key, _ec.EllipticCurvePrivateKey):
        alg = {'secp256r1': jose.ES256, 'secp384r1': jose.ES384}.get(key.curve.name)
        if alg:
            return jose.JWKEC(key=key), alg
    raise CertError('ACME account key %s must be RSA or EC P-256/P-384' % path)


class _Responder(object):
    """A standalone http-01 responder for the duration of one order."""

    def __init__(self, address, port):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        tokens = self.tokens = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                prefix = '/.well-known/acme-challenge/'
                body = tokens.get(self.path[len(prefix):]) if self.path.startswith(prefix) else None
                self.send_response(200 if body else 404)
                self.send_header('Content-Type', 'text/plain')
                self.end_headers()
                self.wfile.write((body or 'not found').encode('ascii'))

            def log_message(self, *args):  # quiet
                pass

        try:
            self.server = ThreadingHTTPServer((address, port), Handler)
        except OSError as exc:
            raise CertError('cannot start the http-01 responder on %s:%d: %s' % (address, port, exc.strerror or exc))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# A DNS name as the dns-01 hook receives it: labels of letters, digits and inner hyphens, so
# the DOMAIN argument can never start an option of the hook. The VALUE argument is the
# base64url digest the ACME protocol defines (43 characters of [A-Za-z0-9_-]); it can start
# with '-', which is why hooks should read ACME_VALUE from their environment.
DNS_NAME = re.compile(r'^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
                      r'(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$')
B64URL = re.compile(r'^[A-Za-z0-9_-]{1,128}$')


def _hook(cmd, action, domain, value, timeout):
    if not DNS_NAME.match(domain or ''):
        raise CertError('dns-01 hook %s not run: %r is not a DNS name' % (cmd, domain))
    if not B64URL.match(value or ''):
        raise CertError('dns-01 hook %s not run for %s: the challenge value is not base64url' % (cmd, domain))
    env = dict(os.environ, ACME_ACTION=action, ACME_DOMAIN=domain,
               ACME_RECORD='_acme-challenge.%s' % domain, ACME_VALUE=value)
    try:
        proc = subprocess.run([cmd, action, domain, value], env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CertError('dns-01 hook %s %s failed for %s: %s' % (cmd, action, domain, exc))
    if proc.returncode:
        raise CertError('dns-01 hook %s %s failed for %s (exit %d): %s'
                        % (cmd, action, domain, proc.returncode, (proc.stderr or proc.stdout).strip()[-300:]))


def _problem(exc):
    if isinstance(exc, messages.Error):
        return '%s%s' % (exc.detail or exc.description or exc.typ, ' (%s)' % exc.typ if exc.typ else '')
    if isinstance(exc, errors.ValidationError):
        out = []
        for authzr in exc.failed_authzrs:
            for chall in authzr.body.challenges:
                if chall.error is not None:
                    out.append('%s: %s' % (authzr.body.identifier.value, chall.error.detail or chall.error.typ))
        return '; '.join(out) or str(exc)
    return str(exc) or type(exc).__name__


def issue(cfg, key, sans):
    """The full chain (list of certificates, leaf first) for *key* and *sans* from an ACME CA."""
    if not HAS_ACME:
        raise CertError('the acme Python package is needed for provider=acme: pip install acme')
    directory_url = cfg.get('directory') or LETS_ENCRYPT
    challenge = cfg.get('challenge') or 'http-01'
    timeout = parse_duration(cfg.get('timeout') or '2m', 'acme.timeout')
    verify = cfg.get('ca_path') or (cfg.get('validate_certs', True) is not False)
    jwk, alg = _account(cfg)
    net = client.ClientNetwork(jwk, alg=alg, verify_ssl=verify, user_agent='oncall.runbooks cert_renew')
    csr_pem = x509.build_csr(key, sans, cfg.get('common_name')).public_bytes(
        x509.serialization.Encoding.PEM)
    cleanups = []
    responder = None
    try:
        try:
            acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
        except Exception as exc:  # pylint: disable=broad-except  # requests, JSON errors
            raise CertError('cannot read the ACME directory %s: %s' % (directory_url, exc))
        try:
            reg = messages.NewRegistration.from_data(
                email=cfg.get('email'), terms_of_service_agreed=cfg.get('terms_agreed', True) is not False)
            try:
                net.account = acme.new_account(reg)
            except errors.ConflictError as exc:  # the key already has an account
                net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
            order = acme.new_order(csr_pem)
        except (messages.Error, errors.Error) as exc:
            raise CertError('the ACME server %s refused the order for %s: %s'
                            % (directory_url, ', '.join(sans), _problem(exc)))
        if challenge == 'http-01' and not cfg.get('webroot'):
            responder = _Responder(cfg.get('standalone_address') or '0.0.0.0', int(cfg.get('standalone_port') or 80))
        for authz in order.authorizations:
            domain = authz.body.identifier.value
            if authz.body.status == messages.STATUS_VALID:
                continue
            wanted = challenges.HTTP01 if challenge == 'http-01' else challenges.DNS01
            challb = next((c for c in authz.body.challenges if isinstance(c.chall, wanted)), None)
            if challb is None:
                raise CertError('the ACME server %s offers no %s challenge for %s' % (directory_url, challenge, domain))
            response, validation = challb.response_and_validation(jwk)
            if challenge == 'http-01':
                token = challb.chall.encode('token')
                if responder is not None:
                    responder.tokens[token] = validation
                else:
                    folder = os.path.join(cfg['webroot'], '.well-known', 'acme-challenge')
                    os.makedirs(folder, mode=0o755, exist_ok=True)
                    path = os.path.join(folder, token)
                    with open(path, 'w') as f:
                        f.write(validation)
                    os.chmod(path, 0o644)
                    cleanups.append(lambda p=path: os.path.exists(p) and os.unlink(p))
            else:
                if not cfg.get('dns_hook'):
                    raise CertError('acme.dns_hook is needed for dns-01 (a command run as HOOK add|remove DOMAIN VALUE)')
                _hook(cfg['dns_hook'], 'add', domain, validation, timeout)
                cleanups.append(lambda d=domain, v=validation: _hook(cfg['dns_hook'], 'remove', d, v, timeout))
            try:
                acme.answer_challenge(challb, response)
            except (messages.Error, errors.Error) as exc:
                raise CertError('the ACME server %s refused the %s answer for %s: %s'
                                % (directory_url, challenge, domain, _problem(exc)))
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        try:
            order = acme.poll_and_finalize(order, deadline)
        except errors.ValidationError as exc:
            raise CertError('the %s challenge failed at %s: %s' % (challenge, directory_url, _problem(exc)))
        except errors.TimeoutError:
            raise CertError('the ACME order at %s did not complete within %s' % (directory_url, format_duration(timeout)))
        except (messages.Error, errors.Error) as exc:
            raise CertError('the ACME server %s refused to finalize the order for %s: %s'
                            % (directory_url, ', '.join(sans), _problem(exc)))
        return x509.load_chain(order.fullchain_pem, 'the certificate from %s' % directory_url)
    finally:
        if responder is not None:
            responder.stop()
        for undo in reversed(cleanups):
            try:
                undo()
            except (OSError, CertError):
                pass
