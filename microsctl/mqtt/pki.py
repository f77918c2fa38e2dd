"""A throwaway certificate authority for TLS trials, tests and the bench (the `cryptography`
package, a dev dependency): a CA and a server certificate for localhost / 127.0.0.1 signed by it."""
import datetime
import ipaddress

from microsctl import MicrosError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID
except ImportError as err:
    raise MicrosError('making test certificates needs the cryptography package: pip install -e ".[dev]"') from err


def _key(kind):
    return rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" else \
        ec.generate_private_key(ec.SECP256R1())


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def make(folder, name="ca", kind="rsa"):
    """Write <name>.pem (CA), <name>.der, <name>-server.pem and <name>-server.key in folder;
    returns their paths as a dict: ca, ca_der, cert, key."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = _key(kind)
    ca = (x509.CertificateBuilder().subject_name(_name(f"micrOS test CA {name}")).issuer_name(_name(f"micrOS test CA {name}"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = _key(kind)
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    out = {"ca": folder / f"{name}.pem", "ca_der": folder / f"{name}.der", "cert": folder / f"{name}-server.pem",
           "key": folder / f"{name}-server.key"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out["ca_der"].write_bytes(ca.public_bytes(serialization.Encoding.DER))
    out["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out["key"].write_bytes(_pem_key(key))
    return out
