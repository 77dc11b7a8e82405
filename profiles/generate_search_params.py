#!/usr/bin/env python3
"""Compact the R4 SearchParameter Bundle into profiles/search-parameters.json.

Input: the official FHIR R4 (4.0.1) `search-parameters.json` Bundle
(default /work/shared/fhir-r4/search-parameters.json, or argv[1]).
Output: a JSON object {"resourceTypes": [...], "params": [...]}: the 146 concrete R4
resource types (from profiles/r4-model.json, kind "r", minus the abstract Resource and
DomainResource), and one object per SearchParameter, keeping only what the
search index needs: code, base[], type, expression, xpathUsage, target[],
component[{code, expression}], multipleOr, multipleAnd, modifier[], comparator[].
Two US Core parameters that R4 lacks are appended (Goal `description`, CareTeam `role`).
Component definitions are canonical URLs of other SearchParameters; they are
resolved to the referenced parameter's code here so the Rust side needs no URL map.
One R4 erratum is corrected (ERRATA below): DocumentReference `relationship` gives
its components each other's expressions (fixed in R4B).
"""
import json
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fhir-r4/search-parameters.json"
dst = sys.argv[2] if len(sys.argv) > 2 else "profiles/search-parameters.json"

with open(src, encoding="utf-8") as f:
    bundle = json.load(f)

params = [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == "SearchParameter"]
by_url = {p["url"]: p for p in params if "url" in p}

# R4 4.0.1 pairs `relatesto` (a reference) with `code` and `relation` (a token) with
# `target`; R4B pairs each with its own element.
ERRATA = {
    ("DocumentReference-relationship", "relatesto"): "target",
    ("DocumentReference-relationship", "relation"): "code",
}

out = []
for p in params:
    o = {"code": p["code"], "base": p.get("base", []), "type": p["type"]}
    for key in ("expression", "xpathUsage"):
        if key in p:
            o[key] = p[key]
    for key in ("target", "modifier", "comparator"):
        if p.get(key):
            o[key] = p[key]
    for key in ("multipleOr", "multipleAnd"):
        if key in p:
            o[key] = p[key]
    if p.get("component"):
        comps = []
        for c in p["component"]:
            ref = by_url.get(c.get("definition", ""))
            code = ref["code"] if ref else c.get("definition", "").rsplit("/", 1)[-1]
            expression = ERRATA.get((p.get("id"), code), c.get("expression", ""))
            comps.append({"code": code, "expression": expression})
        o["component"] = comps
    out.append(o)

# US Core (STU 8) search parameters that the care-plan server needs and R4 core lacks.
US_CORE_EXTRA = [
    # us-core-goal-description
    {"code": "description", "base": ["Goal"], "type": "token", "expression": "Goal.description", "xpathUsage": "normal"},
    # us-core-careteam-role
    {"code": "role", "base": ["CareTeam"], "type": "token", "expression": "CareTeam.participant.role", "xpathUsage": "normal"},
]
for extra in US_CORE_EXTRA:
    taken = any(o["code"] == extra["code"] and set(o["base"]) & set(extra["base"]) for o in out)
    if not taken:
        out.append(extra)

model_path = sys.argv[3] if len(sys.argv) > 3 else "profiles/r4-model.json"
with open(model_path, encoding="utf-8") as f:
    model = json.load(f)["t"]
types = sorted(k for k, v in model.items() if v.get("k") == "r" and k not in ("Resource", "DomainResource"))

with open(dst, "w", encoding="utf-8") as f:
    f.write('{"resourceTypes":')
    f.write(json.dumps(types, separators=(",", ":")))
    f.write(',\n"params":[\n')
    f.write(",\n".join(json.dumps(o, separators=(",", ":"), ensure_ascii=False) for o in out))
    f.write("\n]}\n")
print(f"wrote {len(out)} search parameters and {len(types)} resource types to {dst}")
