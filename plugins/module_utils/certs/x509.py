# -*- coding: utf-8 -*-
# Copyright: oncall.runbooks contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Certificates and keys: parse, summarize, compare, verify a chain, make keys and CSRs.

Everything here works on PEM text and ``cryptography`` objects; nothing reads or writes files
or talks to a server (that is ``locations.py``). A private key is never part of a summary.
"""

from __future__ import annotations

import datetime
import re

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_ERROR = exc

KEY_TYPES = ('rsa2048', 'rsa3072', 'rsa4096', 'ec256', 'ec384')
SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

_PEM_CERT = re.compile(r'-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----', re.S)


class CertError(Exception):
    """One clear sentence about a certificate, a key or where they live."""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def split_pem(text):
    """Every certificate block in *text*, in order."""
    if isinstance(text, bytes):
        text = text.decode('ascii', 'replace')
    return [m.group(0) + '\n' for m in _PEM_CERT.finditer(text or '')]


def load_chain(text, what):
    """The certificates in PEM *text* (leaf first); CertError names *what* when there is none."""
    blocks = split_pem(text)
    if not blocks:
        raise CertError('%s is not a PEM certificate (no BEGIN CERTIFICATE block)' % what)
    try:
        return [x509.load_pem_x509_certificate(b.encode('ascii')) for b in blocks]
    except ValueError as exc:
        raise CertError('%s holds a PEM block that is not a valid certificate: %s' % (what, exc))


def load_key(data, what, passphrase=None):
    if isinstance(data, str):
        data = data.encode('ascii', 'replace')
    if b'PRIVATE KEY-----' not in (data or b''):
        raise CertError('%s is not a PEM private key' % what)
    try:
        return serialization.load_pem_private_key(
            data, password=passphrase.encode('utf-8') if passphrase else None)
    except (ValueError, TypeError):
        # the library's message may quote key material; keep ours
        raise CertError('%s cannot be loaded as a private key (wrong format or passphrase)' % what)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')


def key_type_of(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return 'rsa%d' % public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {'secp256r1': 'ec256', 'secp384r1': 'ec384', 'secp521r1': 'ec521'}.get(
            public_key.curve.name, 'ec-' + public_key.curve.name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return 'ed25519'
    return type(public_key).__name__


def new_key(key_type):
    if key_type.startswith('rsa'):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == 'ec256':
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == 'ec384':
        return ec.generate_private_key(ec.SECP384R1())
    raise CertError('key_type must be one of %s, not %r' % (', '.join(KEY_TYPES), key_type))


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert, key):
    return _public_bytes(cert.public_key()) == _public_bytes(key.public_key())


def sans_of(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = ['DNS:%s' % n for n in ext.get_values_for_type(x509.DNSName)]
    out += ['IP:%s' % n for n in ext.get_values_for_type(x509.IPAddress)]
    return out


def normalize_sans(names):
    """``api.example.com``/``DNS:api.example.com``/``IP:10.0.0.1`` -> sorted ``DNS:``/``IP:`` list."""
    import ipaddress
    out = set()
    for name in names or []:
        name = str(name).strip()
        if name.upper().startswith('DNS:'):
            out.add('DNS:' + name[4:].lower())
        elif name.upper().startswith('IP:'):
            out.add('IP:' + str(ipaddress.ip_address(name[3:])))
        else:
            try:
                out.add('IP:' + str(ipaddress.ip_address(name)))
            except ValueError:
                out.add('DNS:' + name.lower())
    return sorted(out)


def _name(name):
    return name.rfc4514_string()


def not_after(cert):
    return cert.not_valid_after_utc


def summarize(chain, now=None):
    """Plain data about the leaf of *chain*: what cert_info and cert_renew return."""
    now = now or utcnow()
    leaf = chain[0]
    left = not_after(leaf) - now
    return {
        'subject': _name(leaf.subject),
        'issuer': _name(leaf.issuer),
        'serial': '%X' % leaf.serial_number,
        'not_before': leaf.not_valid_before_utc.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'not_after': not_after(leaf).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'days_remaining': round(left.total_seconds() / 86400.0, 2),
        'subject_alt_names': sorted(sans_of(leaf)),
        'key_type': key_type_of(leaf.public_key()),
        'self_signed': leaf.issuer == leaf.subject,
        'chain_length': len(chain),
        'fingerprint_sha256': leaf.fingerprint(hashes.SHA256()).hex(),
    }


def _issued_by(cert, issuer):
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:  # pylint: disable=broad-except  # InvalidSignature, TypeError, ValueError
        return False


def load_trust(ca_path):
    """Trusted roots from a PEM bundle (default: the system bundle); [] when unreadable.

    Each certificate is parsed on its own: one that this cryptography version refuses (the
    system bundle holds a few old roots with non-positive serials) is left out, not the bundle.
    """
    import warnings
    path = ca_path or SYSTEM_CA_BUNDLE
    try:
        with open(path, 'rb') as f:
            blocks = split_pem(f.read())
    except OSError:
        blocks = []
    roots = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for block in blocks:
            try:
                roots.append(x509.load_pem_x509_certificate(block.encode('ascii')))
            except ValueError:
                continue
    if ca_path and not roots:
        raise CertError('ca_path %s cannot be read as a PEM bundle of CA certificates' % ca_path)
    return roots


def verify_chain(chain, roots, now=None):
    """(ok, why): every certificate issued by the next, within its dates, ending at a trusted root.

    A self-signed leaf verifies only when it is itself in *roots*.
    """
    now = now or utcnow()
    for cert in chain:
        if now < cert.not_valid_before_utc:
            return False, '%s is not valid before %s' % (_name(cert.subject), cert.not_valid_before_utc)
        if now > cert.not_valid_after_utc:
            return False, '%s expired on %s' % (_name(cert.subject), cert.not_valid_after_utc)
    for cert, issuer in zip(chain, chain[1:]):
        if not _issued_by(cert, issuer):
            return False, '%s is not issued by the next certificate in the chain (%s)' % (
                _name(cert.subject), _name(issuer.subject))
    last = chain[-1]
    root_ders = set(r.public_bytes(serialization.Encoding.DER) for r in roots)
    if last.public_bytes(serialization.Encoding.DER) in root_ders:
        return True, ''
    for root in roots:
        if _issued_by(last, root):
            return True, ''
    if last.issuer == last.subject:
        return False, 'self-signed certificate %s is not a trusted root' % _name(last.subject)
    return False, 'no trusted root issued %s (issuer %s)' % (_name(last.subject), _name(last.issuer))


def build_csr(key, sans, common_name=None):
    names = []
    for san in sans:
        kind, value = san.split(':', 1)
        if kind == 'IP':
            import ipaddress
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        else:
            names.append(x509.DNSName(value))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject).add_extension(
        x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


def sign(key, sans, common_name, valid_days, issuer_cert=None, issuer_key=None):
    """A leaf certificate for *key*: self-signed, or signed by issuer_cert/issuer_key (own CA)."""
    now = utcnow()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or sans[0].split(':', 1)[1])])
    csr = build_csr(key, sans, common_name)
    san_ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=valid_days))
               .add_extension(san_ext, critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    signer = issuer_key if issuer_key is not None else key
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def make_ca(common_name, valid_days=3650, key=None):
    """A CA certificate and its key (for tests, the lab and the ownca provider's examples)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key
