#!/usr/bin/env python3
"""Get a patient access token by a real standalone SMART launch against a running Coplan
(authorization code + PKCE S256, sign-in and consent pages submitted as a browser would).
Used by the benchmark to measure confined (patient/) reads; standard library only.

Usage: benches/patient_token.py [--json] ORIGIN CLIENT_ID REDIRECT_URI USERNAME PASSWORD [SCOPE]
Prints the access token on stdout (with --json, the whole token response: the refresh token too).
"""
import base64
import hashlib
import html
import http.client
import json
import re
import secrets
import sys
import urllib.parse


def inputs(page):
    """Hidden inputs and checked checkboxes, as a browser submits them."""
    fields = []
    for tag in re.findall(r"<input[^>]*>", page):
        attrs = dict((k, html.unescape(v)) for k, v in re.findall(r'(\w+)="([^"]*)"', tag))
        kind = attrs.get("type", "")
        if "name" not in attrs or "value" not in attrs:
            continue
        if kind == "hidden" or (kind == "checkbox" and " checked" in tag and " disabled" not in tag):
            fields.append((attrs["name"], attrs["value"]))
    return fields


class Browser:
    def __init__(self, origin):
        parsed = urllib.parse.urlparse(origin)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.cookies = {}

    def request(self, method, path, form=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {}
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["content-type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                k, _, rest = value.partition("=")
                self.cookies[k] = rest.split(";", 1)[0]
        data = resp.read().decode("utf-8", "replace")
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data


def main():
    args = sys.argv[1:]
    whole = args[:1] == ["--json"]
    if whole:
        args = args[1:]
    if len(args) < 5:
        sys.exit(__doc__)
    origin, client_id, redirect_uri, username, password = args[:5]
    scope = args[5] if len(args) > 5 else "launch/patient patient/*.rs"
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": scope, "state": state, "aud": origin + "/fhir",
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
    browser = Browser(origin)
    status, _, page = browser.request("GET", "/auth/authorize?" + query)
    if status != 200:
        sys.exit(f"authorize: {status} {page[:300]}")
    status, _, page = browser.request(
        "POST", "/auth/authorize", inputs(page) + [("username", username), ("password", password)])
    if status != 200:
        sys.exit(f"sign-in: {status} {page[:300]}")
    status, headers, page = browser.request("POST", "/auth/authorize", inputs(page) + [("action", "approve")])
    if status not in (302, 303):
        sys.exit(f"consent: {status} {page[:300]}")
    params = urllib.parse.parse_qs(urllib.parse.urlparse(headers["location"]).query)
    if params.get("state") != [state] or "code" not in params:
        sys.exit(f"redirect without code or with the wrong state: {headers['location']}")
    status, _, body = browser.request("POST", "/auth/token", [
        ("grant_type", "authorization_code"), ("code", params["code"][0]),
        ("redirect_uri", redirect_uri), ("client_id", client_id), ("code_verifier", verifier)])
    if status != 200:
        sys.exit(f"token: {status} {body[:300]}")
    print(body if whole else json.loads(body)["access_token"])


if __name__ == "__main__":
    main()
