//! The SDC 3.0 FHIRPath functions (sdc expressions.html#fhirpath-supplements) the shared
//! engine registers on top of octofhir-fhirpath's registry:
//!
//! * `answers()`: every answer of the input QuestionnaireResponse(s) or item(s), nested items
//!   (under items and under answers) included, in document order;
//! * `ordinal()` and `weight()` (the same function; `ordinal()` is SDC's older name): for each
//!   input element, its weight: an `itemWeight` or `ordinalValue` extension on the element
//!   itself; else, when `%questionnaire` is bound, the weight the Questionnaire gives the
//!   element's Coding (an `answerOption.valueCoding` with the same system and code carrying
//!   the extension on the option or on its Coding, else a concept of a contained ValueSet's
//!   `compose.include` / `expansion.contains` with that system and code). Elements without a
//!   weight yield nothing. A Questionnaire lookup takes the first match in the Questionnaire:
//!   callers that need per-item precision (one code weighted differently by two items) put
//!   the weight on the answer's Coding first (fhir-questionnaire does).
//!
//! octofhir-fhirpath's own `weight()` reads only the element's extensions and then asks a
//! terminology server this engine does not have; the one here replaces it.

use std::str::FromStr;
use std::sync::Arc;

use octofhir_fhirpath::core::node::FhirNode;
use octofhir_fhirpath::evaluator::function_registry::{
    ArgumentEvaluationStrategy, EmptyPropagation, FunctionCategory, FunctionMetadata,
    FunctionSignature, NullPropagationStrategy, ProviderPureFunctionEvaluator,
};
use octofhir_fhirpath::evaluator::EvaluationResult;
use octofhir_fhirpath::{Collection, EvaluationContext, FhirPathValue, FunctionRegistry};
use rust_decimal::Decimal;

const ITEM_WEIGHT: &str = "http://hl7.org/fhir/StructureDefinition/itemWeight";
const ORDINAL_VALUE: &str = "http://hl7.org/fhir/StructureDefinition/ordinalValue";

/// Registers `answers()`, `ordinal()` and `weight()` in `registry`.
pub(crate) fn register(registry: &mut FunctionRegistry) {
    registry.register_provider_pure_function(Arc::new(Answers {
        metadata: metadata(
            "answers",
            "SDC answers(): every answer, nested ones included",
            "Any",
        ),
    }));
    for name in ["ordinal", "weight"] {
        registry.register_provider_pure_function(Arc::new(Weight {
            metadata: metadata(
                name,
                "SDC weight()/ordinal(): the weight of a coded answer",
                "Decimal",
            ),
        }));
    }
}

fn metadata(name: &str, description: &str, return_type: &str) -> FunctionMetadata {
    FunctionMetadata {
        name: name.to_string(),
        description: description.to_string(),
        signature: FunctionSignature {
            input_type: "Any".to_string(),
            parameters: vec![],
            return_type: return_type.to_string(),
            polymorphic: false,
            min_params: 0,
            max_params: Some(0),
        },
        argument_evaluation: ArgumentEvaluationStrategy::Current,
        null_propagation: NullPropagationStrategy::Focus,
        empty_propagation: EmptyPropagation::Propagate,
        deterministic: true,
        category: FunctionCategory::Utility,
        requires_terminology: false,
        requires_model: false,
    }
}

struct Answers {
    metadata: FunctionMetadata,
}

/// Pushes the answers under `node` (a response or an item, or an answer: its nested items).
fn collect_answers(node: &FhirNode, out: &mut Vec<FhirPathValue>) {
    for item in node.get("item").and_then(FhirNode::as_array).unwrap_or(&[]) {
        for answer in item
            .get("answer")
            .and_then(FhirNode::as_array)
            .unwrap_or(&[])
        {
            out.push(FhirPathValue::resource_from_node(answer.clone()));
            collect_answers(answer, out);
        }
        collect_answers(item, out);
    }
}

#[async_trait::async_trait]
impl ProviderPureFunctionEvaluator for Answers {
    async fn evaluate(
        &self,
        input: Collection,
        _args: Vec<Collection>,
        _context: &EvaluationContext,
    ) -> octofhir_fhirpath::Result<EvaluationResult> {
        let mut out = Vec::new();
        for value in input.iter() {
            if let FhirPathValue::Resource(node, _, _) = value {
                // An item's own answers, then everything nested under it.
                for answer in node
                    .get("answer")
                    .and_then(FhirNode::as_array)
                    .unwrap_or(&[])
                {
                    out.push(FhirPathValue::resource_from_node(answer.clone()));
                    collect_answers(answer, &mut out);
                }
                collect_answers(node, &mut out);
            }
        }
        Ok(EvaluationResult {
            value: Collection::from(out),
        })
    }

    fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}

struct Weight {
    metadata: FunctionMetadata,
}

fn decimal_of(node: &FhirNode) -> Option<Decimal> {
    match node {
        FhirNode::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        FhirNode::Str(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
}

/// The `itemWeight` / `ordinalValue` on `element`'s own extensions.
fn own_weight(element: &FhirNode) -> Option<Decimal> {
    element
        .get("extension")
        .and_then(FhirNode::as_array)?
        .iter()
        .filter(|e| {
            matches!(
                e.get("url").and_then(FhirNode::as_str),
                Some(ITEM_WEIGHT | ORDINAL_VALUE)
            )
        })
        .find_map(|e| {
            e.get("valueDecimal")
                .or_else(|| e.get("valueInteger"))
                .and_then(decimal_of)
        })
}

fn same_coding(a: &FhirNode, system: Option<&str>, code: &str) -> bool {
    a.get("code").and_then(FhirNode::as_str) == Some(code)
        && a.get("system").and_then(FhirNode::as_str) == system
}

fn array<'n>(node: &'n FhirNode, key: &str) -> &'n [FhirNode] {
    node.get(key).and_then(FhirNode::as_array).unwrap_or(&[])
}

/// The weight `questionnaire` gives the Coding (system, code) (see the module doc).
fn questionnaire_weight(
    questionnaire: &FhirNode,
    system: Option<&str>,
    code: &str,
) -> Option<Decimal> {
    fn in_items(items: &[FhirNode], system: Option<&str>, code: &str) -> Option<Decimal> {
        items.iter().find_map(|item| {
            array(item, "answerOption")
                .iter()
                .find_map(|option| {
                    let coding = option.get("valueCoding")?;
                    if !same_coding(coding, system, code) {
                        return None;
                    }
                    own_weight(option).or_else(|| own_weight(coding))
                })
                .or_else(|| in_items(array(item, "item"), system, code))
        })
    }
    fn in_contains(contains: &[FhirNode], system: Option<&str>, code: &str) -> Option<Decimal> {
        contains.iter().find_map(|c| {
            if same_coding(c, system, code) {
                if let Some(w) = own_weight(c) {
                    return Some(w);
                }
            }
            in_contains(array(c, "contains"), system, code)
        })
    }
    if let Some(w) = in_items(array(questionnaire, "item"), system, code) {
        return Some(w);
    }
    array(questionnaire, "contained").iter().find_map(|vs| {
        let from_compose = vs
            .get("compose")
            .map(|c| array(c, "include"))
            .unwrap_or(&[])
            .iter()
            .filter(|inc| inc.get("system").and_then(FhirNode::as_str) == system)
            .flat_map(|inc| array(inc, "concept"))
            .find(|concept| concept.get("code").and_then(FhirNode::as_str) == Some(code))
            .and_then(own_weight);
        from_compose.or_else(|| {
            let expansion = vs.get("expansion")?;
            in_contains(array(expansion, "contains"), system, code)
        })
    })
}

#[async_trait::async_trait]
impl ProviderPureFunctionEvaluator for Weight {
    async fn evaluate(
        &self,
        input: Collection,
        _args: Vec<Collection>,
        context: &EvaluationContext,
    ) -> octofhir_fhirpath::Result<EvaluationResult> {
        let questionnaire = match context.get_variable("questionnaire") {
            Some(FhirPathValue::Resource(node, _, _)) => Some(node),
            _ => None,
        };
        let mut out = Vec::new();
        for value in input.iter() {
            let FhirPathValue::Resource(node, _, _) = value else {
                continue;
            };
            // An answer (its value[x] holds the Coding) or the Coding itself.
            let coding = node.get("valueCoding").unwrap_or(node);
            let weight = own_weight(node).or_else(|| own_weight(coding)).or_else(|| {
                let code = coding.get("code").and_then(FhirNode::as_str)?;
                let system = coding.get("system").and_then(FhirNode::as_str);
                questionnaire_weight(questionnaire.as_ref()?, system, code)
            });
            if let Some(w) = weight {
                out.push(FhirPathValue::decimal(w));
            }
        }
        Ok(EvaluationResult {
            value: Collection::from(out),
        })
    }

    fn metadata(&self) -> &FunctionMetadata {
        &self.metadata
    }
}
