"""Turning a client's ``image_url`` into a decoded image, refusing anything unsafe.

``data:`` URLs are decoded from base64; the format is read from the bytes themselves
(PNG, JPEG, WebP, GIF), never from the claimed MIME type, and only that format's decoder
is let near them. Size is checked from the header, and pixels are decoded only when the
request reaches the model (:class:`EncodedImage`), so waiting requests hold compressed bytes.

Remote ``http(s)://`` URLs would let any client make this server send requests (SSRF),
so they are off unless ``server.allow_remote_images`` is on, and then only for hosts on
``server.remote_image_hosts``. Loopback, private, link-local and other non-public
addresses are always refused; the connection goes to the address that was checked
(no second DNS lookup an attacker could answer differently), and redirects are
checked again hop by hop.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import socket
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from labeeb.server.errors import ApiError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

#: Magic bytes -> the Pillow format that may decode them.
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
FORMATS = "PNG, JPEG, WebP or GIF"
FETCH_TIMEOUT = 10.0
MAX_REDIRECTS = 3


@dataclass
class ImagePolicy:
    max_pixels: int
    max_bytes: int
    allow_remote: bool = False
    remote_hosts: list[str] = field(default_factory=list)


def sniff(data: bytes) -> str | None:
    """The image format the bytes really are, or None."""
    for magic, name in SIGNATURES:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


@dataclass
class EncodedImage:
    """An image checked by its header (format and size) but not decoded yet.

    Requests keep their images in this form while they wait for the model, so waiting
    requests hold only the compressed bytes; pixels are decoded in the model's slot.
    """

    data: bytes
    kind: str
    width: int
    height: int
    param: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def decode(self) -> Image:
        """The first frame, decoded; a damaged file is an ApiError naming ``param``."""
        from PIL import Image as PILImage

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", PILImage.DecompressionBombWarning)
                with PILImage.open(io.BytesIO(self.data), formats=[self.kind]) as image:
                    if image.size != self.size:  # the file is not what its header said
                        raise ValueError("size changed")
                    image.seek(0)
                    image.load()
                    return image.copy()
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
            raise ApiError(400, "the image is too large to decode safely", "image_too_large", self.param) from None
        except Exception as exc:  # truncated or corrupt files raise many kinds of errors
            raise ApiError(
                400, f"the {self.kind} image is damaged or truncated ({exc.__class__.__name__})",
                "invalid_image", self.param,
            ) from None


def probe(data: bytes, max_pixels: int, param: str | None = None) -> EncodedImage:
    """Check image bytes by their header alone: a known format, within the pixel limit."""
    from PIL import Image as PILImage

    if not data:
        raise ApiError(400, "the image is empty", "invalid_image", param)
    kind = sniff(data)
    if kind is None:
        raise ApiError(400, f"the image is not a {FORMATS} file (checked by its content)", "invalid_image", param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise ApiError(400, "the image is too large to decode safely", "image_too_large", param) from None
    except Exception as exc:  # a header PIL cannot read
        raise ApiError(
            400, f"the {kind} image is damaged or truncated ({exc.__class__.__name__})", "invalid_image", param
        ) from None
    if width * height > max_pixels:
        raise ApiError(
            400,
            f"the image is {width}x{height} = {width * height:,} pixels; "
            f"this server takes at most {max_pixels:,} (server.max_image_pixels)",
            "image_too_large",
            param,
        )
    return EncodedImage(data, kind, width, height, param)


def open_bytes(data: bytes, max_pixels: int, param: str | None = None) -> Image:
    """Decode image bytes (first frame of animations) within the pixel limit."""
    return probe(data, max_pixels, param).decode()


def decode_data_url(url: str, max_pixels: int, param: str | None = None) -> EncodedImage:
    header, sep, payload = url.partition(",")
    if not sep:
        raise ApiError(400, "malformed data: URL (no comma before the data)", "invalid_image", param)
    if ";base64" not in header.lower():
        raise ApiError(400, "only base64 data: URLs are supported (data:image/png;base64,...)", "invalid_image", param)
    payload = "".join(payload.split())
    payload += "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "the data: URL is not valid base64", "invalid_image", param) from None
    return probe(data, max_pixels, param)


# -- remote URLs -----------------------------------------------------------------------------


#: IPv6 prefixes whose last 32 bits are an IPv4 address the packet really goes to (NAT64:
#: the well-known prefix and the local-use one, RFC 6052 and RFC 8215).
NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # the Teredo server and the (un-obfuscated) client
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    if any(ip in prefix for prefix in NAT64_PREFIXES):
        return [low32]
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (not :: or ::1)
        return [low32]
    return []


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses, judging any IPv4 one embeds."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner:  # the wrapper prefix may look global; where the packet lands decides
            return all(v4.is_global and not v4.is_multicast for v4 in inner)
    return ip.is_global and not ip.is_multicast


def host_allowed(host: str, patterns: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in (p.lower().rstrip(".") for p in patterns):
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if host == pattern:
            return True
    return False


def _checked_address(url: str, policy: ImagePolicy, param: str | None) -> tuple[str, str, int]:
    """(host, public address to connect to, port) for an allowed URL, else ApiError 403."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "an image URL must be a data: URL or an http(s):// URL", "invalid_image_url", param)
    host = parts.hostname
    if not host_allowed(host, policy.remote_hosts):
        raise ApiError(
            403,
            f"image host {host!r} is not on this server's allow-list (server.remote_image_hosts)",
            "image_host_not_allowed",
            param,
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise ApiError(400, f"cannot resolve image host {host!r} ({exc})", "invalid_image_url", param) from None
    addresses = [info[4][0] for info in infos]
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise ApiError(
            403,
            f"image host {host!r} resolves to a loopback, private or reserved address; refused",
            "image_host_forbidden",
            param,
        )
    return host, addresses[0], port


def fetch_remote(url: str, policy: ImagePolicy, param: str | None = None) -> EncodedImage:
    import httpx

    with httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            host, address, port = _checked_address(url, policy, param)
            parts = urlsplit(url)
            netloc = f"[{address}]" if ":" in address else address
            pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
            default_port = port == (443 if parts.scheme == "https" else 80)
            headers = {"Host": host if default_port else f"{host}:{port}", "Accept": "image/*"}
            extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
            try:
                with client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise ApiError(
                            400, f"fetching the image failed: {host} answered {response.status_code}",
                            "image_fetch_failed", param,
                        )
                    data = bytearray()
                    for piece in response.iter_bytes():
                        data += piece
                        if len(data) > policy.max_bytes:
                            raise ApiError(413, "the remote image is larger than server.max_body_mb",
                                           "image_too_large", param)
            except httpx.HTTPError as exc:
                raise ApiError(
                    400, f"fetching the image from {host} failed ({exc.__class__.__name__})",
                    "image_fetch_failed", param,
                ) from None
            return probe(bytes(data), policy.max_pixels, param)
    raise ApiError(400, f"the image URL redirected more than {MAX_REDIRECTS} times", "image_fetch_failed", param)


def load_image(url: str, policy: ImagePolicy, param: str | None = None) -> EncodedImage:
    """Read and check one ``image_url`` (not decoded yet); every refusal is an ApiError naming ``param``."""
    scheme = url[:8].lower()
    if scheme.startswith("data:"):
        return decode_data_url(url, policy.max_pixels, param)
    if scheme.startswith(("http://", "https://")):
        if not policy.allow_remote:
            raise ApiError(
                403,
                "remote image URLs are turned off on this server; send the image as a base64 "
                "data: URL (or enable server.allow_remote_images with an allow-list)",
                "remote_images_disabled",
                param,
            )
        return fetch_remote(url, policy, param)
    raise ApiError(
        400, "an image URL must be a base64 data: URL (data:image/png;base64,...)", "invalid_image_url", param
    )
