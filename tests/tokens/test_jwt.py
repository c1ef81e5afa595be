"""HS256 JWT encoding and decoding against published vectors and Kuma's own tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from kuma.tokens.jwt import HEADER, JwtError, decode_hs256, encode_hs256, go_json

# jwt.io's HS256 example (header {"alg":"HS256","typ":"JWT"}, the same as Kuma's)
JWT_IO_KEY = b"your-256-bit-secret"
JWT_IO_CLAIMS = {"sub": "1234567890", "name": "John Doe", "iat": 1516239022}
JWT_IO_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# RFC 7515, appendix A.1: a header with CRLF inside, and an `exp` in 2011
RFC_KEY = base64.urlsafe_b64decode(
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow=="
)
RFC_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

# The token in Kuma 0.7.3's app/kuma-dp/cmd/testdata/token (issued by Kuma's Go code; its key
# is unknown, so only header and claims can be compared)
KUMA_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJOYW1lIjoiZHAtZWNoby0xIiwiTWVzaCI6ImRlZmF1bHQifQ"
    ".vHYjNsgLBevIm7B968UomNu8BOmuvdFejmNg6kiP82c"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(header: bytes, claims: bytes, key: bytes, digest: str = "sha256") -> str:
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def test_jwt_io_vector() -> None:
    assert encode_hs256(JWT_IO_CLAIMS, JWT_IO_KEY) == JWT_IO_TOKEN
    assert decode_hs256(JWT_IO_TOKEN, JWT_IO_KEY) == JWT_IO_CLAIMS


def test_rfc7515_vector() -> None:
    claims = decode_hs256(RFC_TOKEN, RFC_KEY, now=1300819379)
    assert claims == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
    assert decode_hs256(RFC_TOKEN, RFC_KEY, now=1300819380) == claims  # exp itself is valid
    with pytest.raises(JwtError, match=r"^token is expired$"):
        decode_hs256(RFC_TOKEN, RFC_KEY, now=1300819381)
    with pytest.raises(JwtError, match=r"^token is expired$"):
        decode_hs256(RFC_TOKEN, RFC_KEY)  # against the clock


def test_header_and_claims_are_byte_for_byte_kumas() -> None:
    token = encode_hs256({"Name": "dp-echo-1", "Mesh": "default"}, b"any key")
    assert token.rsplit(".", 1)[0] == KUMA_TOKEN.rsplit(".", 1)[0]
    signature = hmac.new(b"any key", token.rsplit(".", 1)[0].encode(), hashlib.sha256).digest()
    assert token.rsplit(".", 1)[1] == b64(signature)
    assert "=" not in token


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json(HEADER) == b'{"alg":"HS256","typ":"JWT"}'
    assert go_json({"Name": "a<b>&c", "Mesh": "x\u2028y\u2029"}) == (
        b'{"Name":"a\\u003cb\\u003e\\u0026c","Mesh":"x\\u2028y\\u2029"}'
    )
    assert go_json({"s": 'q"\\\n\r\t\x01\x7f'}) == b'{"s":"q\\"\\\\\\n\\r\\t\\u0001\x7f"}'
    assert go_json({"s": "żółw ☃"}) == '{"s":"żółw ☃"}'.encode()
    assert go_json({"n": 1, "b": False, "z": None, "l": [1, "a"]}) == (
        b'{"n":1,"b":false,"z":null,"l":[1,"a"]}'
    )
    with pytest.raises(TypeError):
        go_json({"f": 1.5})


def test_round_trip_of_any_text() -> None:
    claims = {"Name": 'a<b>&"c\\\u2028', "Mesh": "żółw"}
    token = encode_hs256(claims, b"k")
    assert decode_hs256(token, b"k") == claims


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "token contains an invalid number of segments"),
        ("a.b", "token contains an invalid number of segments"),
        ("a.b.c.d", "token contains an invalid number of segments"),
        ("not a token", "token contains an invalid number of segments"),
        (b64(b'{"alg":"HS256"}') + ".e30.!!!", "the signature is not base64url"),
        ("e3+.e30.AAAA", "the header is not base64url"),
        ("e30.e3 0.AAAA", "the claims segment is not base64url"),
        ("e.e30.AAAA", "the header is not base64url (bad length)"),
        (f"{b64(b'not json')}.e30.AAAA", "the header is not valid JSON"),
        (f"{b64(b'[1]')}.e30.AAAA", "the header is not a JSON object"),
        (f"{b64(b'{}')}.e30.AAAA", "the header names no signing method (alg)"),
        (
            b64(b'{"alg":"none"}') + ".e30.",
            "signing method none is not allowed: tokens are signed with HS256",
        ),
    ],
)
def test_garbled_tokens(token: str, message: str) -> None:
    with pytest.raises(JwtError) as info:
        decode_hs256(token, b"key")
    assert str(info.value) == message


def test_signature_checks() -> None:
    token = encode_hs256({"Name": "web", "Mesh": "default"}, b"key")
    with pytest.raises(JwtError, match=r"^signature is invalid$"):
        decode_hs256(token, b"other key")
    header, claims, signature = token.split(".")
    forged = b64(b'{"Name":"admin","Mesh":"default"}')
    with pytest.raises(JwtError, match=r"^signature is invalid$"):
        decode_hs256(f"{header}.{forged}.{signature}", b"key")
    with pytest.raises(JwtError, match=r"^signature is invalid$"):
        decode_hs256(f"{header}.{claims}.", b"key")
    # padding in a segment is tolerated (jwt-go pads before decoding)
    assert decode_hs256(f"{header}.{claims}.{signature}=", b"key") == {
        "Name": "web",
        "Mesh": "default",
    }


def test_other_hmac_algorithms_are_refused_even_with_the_right_key() -> None:
    token = signed(b'{"alg":"HS512","typ":"JWT"}', b'{"Name":"web","Mesh":"m"}', b"key", "sha512")
    with pytest.raises(JwtError, match=r"^signing method HS512 is not allowed"):
        decode_hs256(token, b"key")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (b"[]", "the claims segment is not a JSON object"),
        (b"{", "the claims segment is not valid JSON"),
        (b'{"exp": NaN}', "the claims segment is not valid JSON"),
        (b'{"exp": "tomorrow"}', 'the "exp" claim is not a number'),
        (b'{"nbf": 4102444800}', "token is not valid yet"),
        (b'{"iat": 4102444800}', "token used before issued"),
        (b'{"exp": 1000}', "token is expired"),
    ],
)
def test_claims_are_checked_after_the_signature(claims: bytes, message: str) -> None:
    token = signed(b'{"alg":"HS256","typ":"JWT"}', claims, b"key")
    with pytest.raises(JwtError) as info:
        decode_hs256(token, b"key")
    assert str(info.value) == message


def test_a_header_without_typ_is_fine() -> None:
    token = signed(b'{"alg":"HS256"}', b'{"Name":"web","Mesh":"m"}', b"key")
    assert decode_hs256(token, b"key") == {"Name": "web", "Mesh": "m"}


def test_empty_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        encode_hs256({"Name": "web"}, b"")
    with pytest.raises(ValueError, match="must not be empty"):
        decode_hs256(JWT_IO_TOKEN, b"")
    assert json.loads(base64.urlsafe_b64decode(JWT_IO_TOKEN.split(".")[0] + "==")) == HEADER
