//! A record's fields in the order they were written, known or not.
//!
//! The typed records ([`super::AgeVerification`], ...) read the fields they
//! know and keep everything else in [`OtherFields`], together with the
//! position of each known field. Writing a record back walks that order, so
//! a read-modify-write keeps every field a Node service wrote, where it
//! wrote it, as a JS object does when one property is assigned: an existing
//! key keeps its place, a new one goes last.
//!
//! [`FieldReader`] and [`FieldWriter`] are the two halves the records'
//! `Deserialize` and `Serialize` impls are built from.

use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A known field: its JSON name and, for error messages, what it must be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) expected: &'static str,
}

/// Why a value is not a record. The messages name fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The JSON is not an object.
    #[error("the record is not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A required field is there with a value of the wrong type.
    #[error("field `{field}` is not {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

/// The fields of a record that its type does not read, in written order.
///
/// Also holds known fields whose value the type could not read (a `null`,
/// a time that is not a time): they are kept as written unless the typed
/// field is set, which then takes their place.
///
/// Equality compares these fields (in order), not where the typed fields
/// stood: a record read from Redis equals one built with the same values.
#[derive(Debug, Clone, Default)]
pub struct OtherFields {
    /// Every field as written: `None` marks where a typed field stood.
    slots: Vec<(String, Option<Value>)>,
}

impl OtherFields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if it is one of these fields.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.slots
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
    }

    /// Sets `key`: in its place if it was written before, else last.
    /// Returns the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.slots.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => slot.replace(value),
            None => {
                self.slots.push((key, Some(value)));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self
            .slots
            .iter()
            .position(|(k, v)| k == key && v.is_some())?;
        self.slots.remove(at).1
    }

    /// The fields, in written order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.slots
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.as_str(), v)))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PartialEq for OtherFields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// Reads the known fields out of a JSON object, leaving the rest.
pub(crate) struct FieldReader {
    slots: Vec<(String, Option<Value>)>,
}

impl FieldReader {
    /// Reads a JSON object; anything else is [`RecordError::NotAnObject`].
    pub(crate) fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Object(map) => Ok(Self::from_map(map)),
            _ => Err(serde::de::Error::custom(RecordError::NotAnObject)),
        }
    }

    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        Self {
            slots: map.into_iter().map(|(k, v)| (k, Some(v))).collect(),
        }
    }

    fn slot(&mut self, name: &str) -> Option<&mut Option<Value>> {
        self.slots
            .iter_mut()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A field without which the record means nothing.
    pub(crate) fn required<T: DeserializeOwned, E: serde::de::Error>(
        &mut self,
        field: Field,
    ) -> Result<T, E> {
        let slot = self
            .slot(field.name)
            .ok_or_else(|| E::custom(RecordError::Missing(field.name)))?;
        let read = slot.as_ref().and_then(|v| T::deserialize(v).ok());
        match read {
            Some(value) => {
                *slot = None;
                Ok(value)
            }
            None => Err(E::custom(RecordError::WrongType {
                field: field.name,
                expected: field.expected,
            })),
        }
    }

    /// A field that may be absent; one that cannot be read as `T` is kept
    /// as written (in [`OtherFields`]) and reads as `None`.
    pub(crate) fn optional<T: DeserializeOwned>(&mut self, field: Field) -> Option<T> {
        let slot = self.slot(field.name)?;
        let value = T::deserialize(slot.as_ref()?).ok()?;
        *slot = None;
        Some(value)
    }

    /// What is left: the fields no typed field took, and the positions.
    pub(crate) fn finish(self) -> OtherFields {
        OtherFields { slots: self.slots }
    }
}

/// Writes a record: its typed fields where they were read, then the others.
pub(crate) struct FieldWriter<'a> {
    other: &'a OtherFields,
    known: Vec<(&'static str, Value)>,
}

impl<'a> FieldWriter<'a> {
    pub(crate) fn new(other: &'a OtherFields) -> Self {
        Self {
            other,
            known: Vec::with_capacity(8),
        }
    }

    /// A typed field that is set.
    pub(crate) fn field<T: Serialize, E: serde::ser::Error>(
        &mut self,
        field: Field,
        value: &T,
    ) -> Result<(), E> {
        let value = serde_json::to_value(value).map_err(E::custom)?;
        self.known.push((field.name, value));
        Ok(())
    }

    /// A typed field that may be unset (then it is left out).
    pub(crate) fn optional<T: Serialize, E: serde::ser::Error>(
        &mut self,
        field: Field,
        value: Option<&T>,
    ) -> Result<(), E> {
        match value {
            Some(value) => self.field(field, value),
            None => Ok(()),
        }
    }

    /// Writes the object: the written order first, new typed fields last.
    pub(crate) fn write<S: Serializer>(self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut used = vec![false; self.known.len()];
        let mut out = serializer.serialize_map(None)?;
        for (key, slot) in &self.other.slots {
            let known = self.known.iter().position(|(name, _)| name == key);
            match (known, slot) {
                (Some(i), _) if !used[i] => {
                    used[i] = true;
                    out.serialize_entry(key, &self.known[i].1)?;
                }
                (Some(_), _) => {}
                (None, Some(value)) => out.serialize_entry(key, value)?,
                // A typed field that was read and has been unset since.
                (None, None) => {}
            }
        }
        for ((name, value), used) in self.known.iter().zip(used) {
            if !used {
                out.serialize_entry(name, value)?;
            }
        }
        out.end()
    }
}
