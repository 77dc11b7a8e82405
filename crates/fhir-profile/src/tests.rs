//! Unit tests of the crate's internals: type specialisation of invariants, invariant
//! evaluation on element instances, terminology membership (FHIR R4 profiling.html,
//! fhirpath.html).

use serde_json::json;

use crate::element::ElemTy;
use crate::invariant::{specialise, Invariant, Outcome};

#[test]
fn type_tests_on_the_context_are_decided_per_type() {
    let us_core_1 = "$this is dateTime implies $this.toString().length() >= 10";
    assert_eq!(
        specialise(us_core_1, "dateTime"),
        "true implies $this.toString().length() >= 10"
    );
    assert_eq!(
        specialise(us_core_1, "Period"),
        "false implies $this.toString().length() >= 10"
    );
    let us_core_3 =
        "ofType(Quantity).system.empty() or ofType(Quantity).system = 'http://unitsofmeasure.org'";
    assert_eq!(
        specialise(us_core_3, "Quantity"),
        "$this.system.empty() or $this.system = 'http://unitsofmeasure.org'"
    );
    assert_eq!(
        specialise(us_core_3, "string"),
        "{}.system.empty() or {}.system = 'http://unitsofmeasure.org'"
    );
    assert_eq!(specialise("$this.is(FHIR.Period)", "Period"), "true");
    assert_eq!(
        specialise("($this as Quantity).value > 0", "Quantity"),
        "($this).value > 0"
    );
    assert_eq!(
        specialise("$this.ofType(Quantity).exists()", "Age"),
        "{}.exists()"
    );
    // Tests inside function arguments ($this is the item), on other elements, in strings:
    // left alone.
    for untouched in [
        "extension.where($this is Extension).exists()",
        "value.ofType(Quantity).exists()",
        "'$this is dateTime'",
        "name.exists() or relationship.exists()",
    ] {
        assert_eq!(specialise(untouched, "dateTime"), untouched);
    }
}

fn constraint(expression: &str) -> serde_json::Value {
    json!({"key": "t-1", "severity": "error", "human": "test", "expression": expression})
}

#[test]
fn invariants_evaluate_on_primitive_and_complex_instances() {
    let date_time = ElemTy::Primitive("dateTime");
    let period = ElemTy::Complex(fhir_validate::ComplexType::named("Period").unwrap());
    let us_core_1 = Invariant::compile(
        &constraint("$this is dateTime implies $this.toString().length() >= 10"),
        &[date_time, period],
    )
    .unwrap();
    let resource = json!({"resourceType": "Observation"});
    assert_eq!(
        us_core_1.evaluate(&json!("2022-11-29"), date_time, &resource),
        Outcome::Holds
    );
    assert_eq!(
        us_core_1.evaluate(&json!("2022"), date_time, &resource),
        Outcome::Fails
    );
    assert_eq!(
        us_core_1.evaluate(&json!({"start": "2022"}), period, &resource),
        Outcome::Holds
    );

    let name = ElemTy::Complex(fhir_validate::ComplexType::named("HumanName").unwrap());
    let us_core_6 = Invariant::compile(
        &constraint("(family.exists() or given.exists()) xor extension.where(url='http://hl7.org/fhir/StructureDefinition/data-absent-reason').exists()"),
        &[name],
    )
    .unwrap();
    assert_eq!(
        us_core_6.evaluate(&json!({"family": "Shaw"}), name, &resource),
        Outcome::Holds
    );
    assert_eq!(
        us_core_6.evaluate(&json!({"use": "old"}), name, &resource),
        Outcome::Fails
    );

    let with_resource =
        Invariant::compile(&constraint("%resource.status = 'final'"), &[name]).unwrap();
    let final_obs = json!({"resourceType": "Observation", "status": "final"});
    assert_eq!(
        with_resource.evaluate(&json!({"family": "x"}), name, &final_obs),
        Outcome::Holds
    );
    assert_eq!(
        with_resource.evaluate(&json!({"family": "x"}), name, &resource),
        Outcome::Fails
    );
}

#[test]
fn invariants_that_cannot_be_checked_say_why() {
    let string = ElemTy::Primitive("string");
    let resolve =
        Invariant::compile(&constraint("reference.resolve() is Patient"), &[string]).unwrap();
    assert_eq!(
        resolve.evaluate(&json!("x"), string, &json!({})),
        Outcome::NotChecked("it uses resolve, which needs more than the resource itself".into())
    );
    let broken = Invariant::compile(&constraint("name.where("), &[string]).unwrap();
    assert!(matches!(
        broken.evaluate(&json!("x"), string, &json!({})),
        Outcome::NotChecked(reason) if reason.contains("does not compile")
    ));
    let unknown = Invariant::compile(&constraint("noSuchFunction()"), &[string]).unwrap();
    assert!(matches!(
        unknown.evaluate(&json!("x"), string, &json!({})),
        Outcome::NotChecked(reason) if reason.contains("noSuchFunction")
    ));
    assert!(Invariant::compile(
        &json!({"severity": "error", "expression": "true"}),
        &[string]
    )
    .is_err());
    assert!(Invariant::compile(
        &json!({"key": "k", "severity": "fatal", "expression": "true"}),
        &[string]
    )
    .is_err());
}
