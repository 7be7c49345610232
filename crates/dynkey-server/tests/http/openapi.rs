//! A checker for the subset of OpenAPI 3.0 schema that proto/openapi.yaml
//! uses: type, properties, required, additionalProperties (false or a
//! schema), items, enum, nullable, minItems, minimum, maximum, $ref.

use serde_json::Value;

use crate::client::Reply;

pub struct Spec(Value);

impl Spec {
    pub fn load() -> Spec {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("proto/openapi.yaml");
        Spec(serde_yaml_ng::from_str(&text).expect("openapi.yaml parses"))
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let mut at = &self.0;
                for part in r.trim_start_matches("#/").split('/') {
                    at = &at[part];
                }
                self.resolve(at)
            }
            None => v,
        }
    }

    /// The path template of the spec that `path` matches.
    fn template(&self, path: &str) -> Option<&str> {
        let path = path.split('?').next().unwrap();
        let segs: Vec<&str> = path.split('/').collect();
        self.0["paths"]
            .as_object()?
            .keys()
            .map(String::as_str)
            .find(|t| {
                let ts: Vec<&str> = t.split('/').collect();
                ts.len() == segs.len()
                    && ts
                        .iter()
                        .zip(&segs)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
    }

    /// Checks a reply: the status must be declared for the route, and the
    /// body must fit the schema of its content type.
    pub fn check(&self, method: &str, path: &str, reply: &Reply) -> Result<(), String> {
        let Some(tpl) = self.template(path) else {
            // Unknown routes answer the generic error shape.
            return self.validate(
                &self.0["components"]["schemas"]["ErrorBody"],
                &json(reply)?,
                "$",
            );
        };
        let op = &self.0["paths"][tpl][method.to_ascii_lowercase()];
        if op.is_null() {
            if reply.status == 405 {
                return self.validate(
                    &self.0["components"]["schemas"]["ErrorBody"],
                    &json(reply)?,
                    "$",
                );
            }
            return Err(format!("method {method} not declared for {tpl}"));
        }
        let resp = &op["responses"][reply.status.to_string()];
        if resp.is_null() {
            return Err(format!(
                "status {} not declared for {method} {tpl}",
                reply.status
            ));
        }
        let content = &self.resolve(resp)["content"];
        let ctype = reply
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string();
        let media = &content[&ctype];
        if media.is_null() {
            return Err(format!("content type {ctype:?} not declared"));
        }
        let schema = self.resolve(&media["schema"]);
        if ctype == "application/json" {
            self.validate(schema, &json(reply)?, "$")
        } else {
            std::str::from_utf8(&reply.body)
                .map(drop)
                .map_err(|e| format!("text body is not UTF-8: {e}"))
        }
    }

    fn validate(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if v.is_null() {
            return if schema["nullable"] == true {
                Ok(())
            } else {
                Err(format!("{at}: null is not allowed"))
            };
        }
        if let Some(options) = schema["enum"].as_array()
            && !options.contains(v)
        {
            return Err(format!("{at}: {v} is not one of {options:?}"));
        }
        let ty = schema["type"].as_str().unwrap_or("");
        let ok = match ty {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: expected {ty}, found {v}"));
        }
        if let Some(min) = schema["minimum"].as_f64()
            && v.as_f64().is_some_and(|n| n < min)
        {
            return Err(format!("{at}: {v} < {min}"));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && v.as_f64().is_some_and(|n| n > max)
        {
            return Err(format!("{at}: {v} > {max}"));
        }
        if let Some(items) = v.as_array() {
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                return Err(format!("{at}: fewer than {min} items"));
            }
            for (i, item) in items.iter().enumerate() {
                self.validate(&schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
        if let Some(obj) = v.as_object() {
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    return Err(format!("{at}: missing required {r:?}"));
                }
            }
            let props = schema["properties"].as_object();
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.validate(s, val, &format!("{at}.{k}"))?,
                    None => match &schema["additionalProperties"] {
                        Value::Bool(false) => {
                            return Err(format!("{at}: undeclared property {k:?}"));
                        }
                        s @ Value::Object(_) => self.validate(s, val, &format!("{at}.{k}"))?,
                        _ => {}
                    },
                }
            }
        }
        Ok(())
    }
}

fn json(reply: &Reply) -> Result<Value, String> {
    serde_json::from_slice(&reply.body)
        .map_err(|e| format!("body is not JSON: {e}: {}", reply.text()))
}

#[test]
fn the_checker_rejects_what_it_should() {
    let spec = Spec::load();
    let schema = &spec.0["components"]["schemas"]["ControlReport"];
    assert!(
        spec.validate(
            schema,
            &serde_json::json!({"queries":1,"matched":2,"changed":0,"rendezvous":1,"id":"3"}),
            "$"
        )
        .is_ok()
    );
    assert!(
        spec.validate(
            schema,
            &serde_json::json!({"queries":1,"matched":2,"changed":0}),
            "$"
        )
        .is_err(),
        "missing field"
    );
    assert!(
        spec.validate(
            schema,
            &serde_json::json!({"queries":1,"matched":2,"changed":0,"rendezvous":1,"x":1}),
            "$"
        )
        .is_err(),
        "extra field"
    );
    assert!(
        spec.validate(
            schema,
            &serde_json::json!({"queries":"1","matched":2,"changed":0,"rendezvous":1}),
            "$"
        )
        .is_err(),
        "wrong type"
    );
    assert!(
        spec.validate(
            schema,
            &serde_json::json!({"queries":1,"matched":2,"changed":0,"rendezvous":2}),
            "$"
        )
        .is_err(),
        "maximum"
    );
    let err = &spec.0["components"]["schemas"]["ErrorEntry"];
    assert!(
        spec.validate(
            err,
            &serde_json::json!({"query":0,"category":"E_NOPE","offset":0,"message":""}),
            "$"
        )
        .is_err(),
        "enum"
    );
}
