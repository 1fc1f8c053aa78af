//! Python values <-> JSON values (SPEC §7), walking the Python objects once. On success no path
//! is built; on failure each level adds its step, so the error names the offending place,
//! e.g. `payload['items'][2]`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::errors::{type_error, value_error};

/// Deeper payloads are refused: they would overflow stacks and JSON parsers downstream.
pub const MAX_DEPTH: usize = 100;

enum Step {
    Key(String),
    Index(usize),
}

/// Why a value is not JSON, and where. Boxed: it is the `Err` of every step of the walk, which
/// stays a pointer wide on the success path.
struct Invalid(Box<Problem>);

struct Problem {
    type_error: bool,
    reason: String,
    /// The exception a `default` hook raised, kept as the `__cause__`.
    cause: Option<PyErr>,
    /// Innermost step first.
    steps: Vec<Step>,
}

impl Invalid {
    fn type_error(reason: String) -> Self {
        Self(Box::new(Problem {
            type_error: true,
            reason,
            cause: None,
            steps: Vec::new(),
        }))
    }

    fn value_error(reason: String) -> Self {
        Self(Box::new(Problem {
            type_error: false,
            reason,
            cause: None,
            steps: Vec::new(),
        }))
    }

    fn at(mut self, step: Step) -> Self {
        self.0.steps.push(step);
        self
    }

    fn into_py_err(self, root: &str) -> PyErr {
        let problem = *self.0;
        let mut path = root.to_owned();
        for step in problem.steps.iter().rev() {
            match step {
                Step::Key(key) => path.push_str(&format!("[{key:?}]").replace('"', "'")),
                Step::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        let message = format!("{path}: {}", problem.reason);
        let error = if problem.type_error {
            type_error(message)
        } else {
            value_error(message)
        };
        if let Some(cause) = problem.cause {
            Python::attach(|py| error.set_cause(py, Some(cause)));
        }
        error
    }
}

/// Converts a Python value to JSON; `root` names it in errors (e.g. "payload").
pub fn to_json(value: &Bound<'_, PyAny>, root: &str) -> PyResult<Value> {
    convert(value, 0, None).map_err(|invalid| invalid.into_py_err(root))
}

/// Like `to_json`, calling `default` on a value that is not JSON (like `json.dumps`'s
/// `default`): its result is converted in turn and may hold further non-JSON values.
pub fn to_json_with_default(
    value: &Bound<'_, PyAny>,
    root: &str,
    default: Option<&Bound<'_, PyAny>>,
) -> PyResult<Value> {
    convert(value, 0, default.filter(|d| !d.is_none())).map_err(|invalid| invalid.into_py_err(root))
}

fn convert(
    value: &Bound<'_, PyAny>,
    depth: usize,
    default: Option<&Bound<'_, PyAny>>,
) -> Result<Value, Invalid> {
    if let Ok(s) = value.cast::<PyString>() {
        return string(s).map(Value::String);
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    // bool is a subclass of int: it must be recognised first.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = value.cast::<PyInt>() {
        return integer(i).map(Value::Number);
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        let f = f.value();
        return Number::from_f64(f).map(Value::Number).ok_or_else(|| {
            Invalid::value_error(format!(
                "{f} is not a finite number, JSON has no NaN or infinity"
            ))
        });
    }
    let container = value.is_instance_of::<PyDict>()
        || value.is_instance_of::<PyList>()
        || value.is_instance_of::<PyTuple>();
    if depth >= MAX_DEPTH && container {
        return Err(Invalid::value_error(format!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(Invalid::type_error(format!(
                    "object keys must be str, not {} ({})",
                    type_name(&key),
                    key.repr().map(|r| r.to_string()).unwrap_or_default()
                )));
            };
            let key = string(key)?;
            let item =
                convert(&item, depth + 1, default).map_err(|e| e.at(Step::Key(key.clone())))?;
            map.insert(key, item);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return sequence(list.iter(), list.len(), depth, default);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return sequence(tuple.iter(), tuple.len(), depth, default);
    }
    if let Some(default) = default {
        return converted_by_default(value, depth, default);
    }
    Err(Invalid::type_error(format!(
        "{} is not a JSON value (use dict, list, tuple, str, int, float, bool or None, or pass default=)",
        type_name(value)
    )))
}

/// `default(value)`, converted in turn. Each call counts as a level of nesting, so a hook that
/// keeps returning non-JSON values ends with an error instead of looping.
fn converted_by_default(
    value: &Bound<'_, PyAny>,
    depth: usize,
    default: &Bound<'_, PyAny>,
) -> Result<Value, Invalid> {
    let name = type_name(value);
    if depth >= MAX_DEPTH {
        return Err(Invalid::value_error(format!(
            "default kept returning non-JSON values ({MAX_DEPTH} levels)"
        )));
    }
    let replaced = default.call1((value,)).map_err(|error| {
        let mut invalid = Invalid::type_error(format!("default could not convert {name}: {error}"));
        invalid.0.cause = Some(error);
        invalid
    })?;
    if replaced.is(value) {
        return Err(Invalid::value_error(format!(
            "default returned the {name} it was given unchanged"
        )));
    }
    convert(&replaced, depth + 1, Some(default))
}

fn sequence<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    depth: usize,
    default: Option<&Bound<'py, PyAny>>,
) -> Result<Value, Invalid> {
    let mut out = Vec::with_capacity(len);
    for (index, item) in items.enumerate() {
        out.push(convert(&item, depth + 1, default).map_err(|e| e.at(Step::Index(index)))?);
    }
    Ok(Value::Array(out))
}

fn string(s: &Bound<'_, PyString>) -> Result<String, Invalid> {
    let text = s.to_str().map_err(|_| {
        Invalid::value_error("string is not valid Unicode (lone surrogate)".to_owned())
    })?;
    if text.contains('\0') {
        return Err(Invalid::value_error(
            "string contains U+0000, which cannot be stored".to_owned(),
        ));
    }
    Ok(text.to_owned())
}

fn integer(i: &Bound<'_, PyInt>) -> Result<Number, Invalid> {
    if let Ok(v) = i.extract::<i64>() {
        return Ok(Number::from(v));
    }
    if let Ok(v) = i.extract::<u64>() {
        return Ok(Number::from(v));
    }
    Err(Invalid::value_error(format!(
        "integer {i} is out of range (-2**63 to 2**64-1)"
    )))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// Builds the Python value of a JSON value.
pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(PyString::new(py, key), to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// A non-empty `str` argument (event types, durable names).
pub fn non_empty_str(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let Ok(s) = value.cast::<PyString>() else {
        return Err(type_error(format!(
            "{what} must be a str, not {}",
            type_name(value)
        )));
    };
    let text = s.to_str()?;
    if text.is_empty() {
        return Err(value_error(format!("{what} must not be empty")));
    }
    if text.contains('\0') {
        return Err(value_error(format!("{what} must not contain U+0000")));
    }
    Ok(text.to_owned())
}

/// A sequence number or version: an int from 0 to 2**64-1, and not a bool.
pub fn sequence_number(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(type_error(format!(
            "{what} must be an int, not {}",
            type_name(value)
        )));
    }
    value
        .extract::<u64>()
        .map_err(|_| value_error(format!("{what} must be between 0 and 2**64-1, got {value}")))
}

pub fn optional_sequence_number(
    value: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<u64>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => sequence_number(v, what).map(Some),
    }
}

/// The items of a list or tuple argument; a str, dict or other iterable is refused so that a
/// single value is not mistaken for a collection of them.
pub fn list_items<'py>(value: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(list) = value.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return Ok(tuple.iter().collect());
    }
    Err(type_error(format!(
        "{what} must be a list or tuple, not {}",
        type_name(value)
    )))
}
