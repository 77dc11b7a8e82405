"""The FHIR clients Python developers use, against a running Coplan: fhirpy 2.x and the SMART
Python client (fhirclient on PyPI). Each check exercises what issue 11 found these clients
tripping over (count via _count=0, POST [base]/ Bundles, get_or_create with URL criteria,
refresh with a bare If-None-Match, Bundle.total, empty searchsets). Run by tests/tools/real_clients.rs
with COPLAN_BASE (the FHIR base URL) and COPLAN_TOKEN (a bearer token with system/*.cruds);
prints one line per check and "N passed, N failed", and exits non-zero when any check fails.
"""

import os
import sys
import traceback
from urllib.parse import urlsplit, parse_qs

from fhirpy import SyncFHIRClient
from fhirclient import client as smart
from fhirclient.models.bundle import Bundle
from fhirclient.models.patient import Patient

BASE = os.environ["COPLAN_BASE"].rstrip("/")
TOKEN = os.environ["COPLAN_TOKEN"]
FAMILY = "Zedowski"

# Every response fhirpy gets: (method, url, status, request headers).
SEEN = []


def record(response, *args, **kwargs):
    SEEN.append(
        (
            response.request.method,
            response.request.url,
            response.status_code,
            dict(response.request.headers),
        )
    )


fhir = SyncFHIRClient(
    BASE,
    authorization=f"Bearer {TOKEN}",
    requests_config={"hooks": {"response": record}},
)
py = smart.FHIRClient(settings={"app_id": "coplan-test", "api_base": BASE})
py.server.session.headers["Authorization"] = f"Bearer {TOKEN}"

RESULTS = []


def check(name):
    def run(fn):
        try:
            fn()
            RESULTS.append((name, None))
            print(f"ok: {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            RESULTS.append((name, e))
            print(f"FAIL: {name}: {e!r}", flush=True)
            traceback.print_exc()
        return fn

    return run


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def last(method):
    return [s for s in SEEN if s[0] == method][-1]


patient_ids = []
for given in ["Ann", "Ben", "Cat"]:
    p = fhir.resource("Patient", name=[{"family": FAMILY, "given": [given]}])
    p.save()
    patient_ids.append(p.id)


@check("fhirpy count() sends _count=0 and reads Bundle.total (issue 11.1)")
def _():
    n = fhir.resources("Patient").search(family=FAMILY).count()
    expect(n == 3, f"count() = {n}")
    query = parse_qs(urlsplit(last("GET")[1]).query)
    expect(query.get("_count") == ["0"], f"fhirpy sent {query}")


@check("fhirpy execute('/') posts a batch to [base]/ (issue 11.3)")
def _():
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient?family={FAMILY}"}},
            {
                "resource": {
                    "resourceType": "Goal",
                    "lifecycleStatus": "active",
                    "description": {"text": "Walk to the park"},
                    "subject": {"reference": f"Patient/{patient_ids[0]}"},
                },
                "request": {"method": "POST", "url": "Goal"},
            },
        ],
    }
    response = fhir.execute("/", method="post", data=bundle)
    method, url, status, _ = last("POST")
    expect(urlsplit(url).path == urlsplit(BASE).path + "/", f"posted to {url}")
    expect(status == 200, f"status {status}")
    expect(response["type"] == "batch-response", f"type {response['type']}")
    statuses = [e["response"]["status"] for e in response["entry"]]
    expect(statuses[0].startswith("200") and statuses[1].startswith("201"), f"{statuses}")
    expect(response["entry"][0]["resource"]["total"] == 3, "the search entry's total")


@check("fhirpy get_or_create() with the identifier in the URL creates once (issue 11.4)")
def _():
    search = fhir.resources("Patient").search(identifier="urn:coplan:test|42")
    first, created = search.get_or_create(
        fhir.resource(
            "Patient",
            identifier=[{"system": "urn:coplan:test", "value": "42"}],
            name=[{"family": "Once"}],
        )
    )
    expect(created, "the first call creates")
    query = parse_qs(urlsplit(last("POST")[1]).query)
    expect(query.get("identifier") == ["urn:coplan:test|42"], f"fhirpy sent {query}")
    again, created_again = search.get_or_create(
        fhir.resource(
            "Patient",
            identifier=[{"system": "urn:coplan:test", "value": "42"}],
            name=[{"family": "Once"}],
        )
    )
    expect(not created_again, "the second call finds the first")
    expect(again.id == first.id, f"{again.id} != {first.id}")
    n = fhir.resources("Patient").search(identifier="urn:coplan:test|42").count()
    expect(n == 1, f"{n} patients with the identifier")


@check("fhirpy refresh() sends a bare If-None-Match and gets 304, then the new version (issue 11.5)")
def _():
    patient = fhir.reference("Patient", patient_ids[1]).to_resource()
    version = patient["meta"]["versionId"]
    patient.refresh()
    _, _, status, headers = last("GET")
    expect(headers.get("If-None-Match") == version, f"sent {headers.get('If-None-Match')!r}")
    expect(status == 304, f"unchanged resource answered {status}")
    other = fhir.reference("Patient", patient_ids[1]).to_resource()
    other["gender"] = "other"
    other.save()
    patient.refresh()
    _, _, status, _ = last("GET")
    expect(status == 200, f"changed resource answered {status}")
    expect(patient["meta"]["versionId"] != version, "refresh() read the new version")
    expect(patient["gender"] == "other", "refresh() read the new content")


@check("fhirclient (SMART Python client): Bundle.total when the result fits one page (issue 11.6)")
def _():
    bundle = Patient.where({"family": FAMILY}).perform(py.server)
    expect(isinstance(bundle, Bundle), type(bundle))
    expect(bundle.total == 3, f"total {bundle.total}")
    expect(len(bundle.entry) == 3, f"{len(bundle.entry)} entries")
    paged = Patient.where({"family": FAMILY, "_count": "2", "_total": "accurate"}).perform(
        py.server
    )
    expect(paged.total == 3 and len(paged.entry) == 2, f"{paged.total}, {len(paged.entry)}")


@check("fhirclient: an empty searchset parses, without an entry array (issue 11.2)")
def _():
    bundle = Patient.where({"family": "Nobody-by-this-name"}).perform(py.server)
    expect(bundle.total == 0, f"total {bundle.total}")
    expect(not bundle.entry, f"entry {bundle.entry}")
    raw = py.server.request_json("Patient?family=Nobody-by-this-name")
    expect("entry" not in raw, f"raw searchset {raw}")


@check("fhirclient: read and create through the R4 models")
def _():
    patient = Patient.read(patient_ids[2], py.server)
    expect(patient.name[0].given == ["Cat"], patient.as_json())
    created = Patient({"name": [{"family": FAMILY, "given": ["Dan"]}]})
    response = created.create(py.server)
    expect(response["resourceType"] == "Patient" and response.get("id"), response)


failed = sum(1 for _, e in RESULTS if e is not None)
print(f"{len(RESULTS) - failed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
