//! `AgeVerification`: the record of `age_verification:{customerId}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fields::{Field, FieldReader, FieldWriter, OtherFields};
use super::time::RecordTime;

const CUSTOMER_ID: Field = Field {
    name: "customerId",
    expected: "a string",
};
const VERIFIED: Field = Field {
    name: "verified",
    expected: "a boolean",
};
const METHOD: Field = Field {
    name: "method",
    expected: "a string",
};
const VERIFIED_AT: Field = Field {
    name: "verifiedAt",
    expected: "a time (an ISO 8601 string or epoch milliseconds)",
};
const DATE_OF_BIRTH: Field = Field {
    name: "dateOfBirth",
    expected: "a string",
};
const AGE_OVER: Field = Field {
    name: "ageOver",
    expected: "an integer from 0 to 255",
};

/// The result of an age check of one customer.
///
/// Only `customerId` and `verified` are required. The JSON keeps the order
/// it was written in, fields this type does not know included.
#[derive(Debug, Clone, PartialEq)]
pub struct AgeVerification {
    /// The customer (`customerId`).
    pub customer_id: String,
    /// Whether the check passed (`verified`).
    pub verified: bool,
    /// How the age was checked, e.g. `id_document`, `credit_card` (`method`).
    pub method: Option<String>,
    /// When (`verifiedAt`).
    pub verified_at: Option<RecordTime>,
    /// `YYYY-MM-DD`, when the check recorded it (`dateOfBirth`).
    pub date_of_birth: Option<String>,
    /// The age threshold proven, e.g. 18 or 21 (`ageOver`).
    pub age_over: Option<u8>,
    /// Every other field, as written.
    pub other: OtherFields,
}

impl AgeVerification {
    /// A record with the two required fields and nothing else.
    pub fn new(customer_id: impl Into<String>, verified: bool) -> Self {
        Self {
            customer_id: customer_id.into(),
            verified,
            method: None,
            verified_at: None,
            date_of_birth: None,
            age_over: None,
            other: OtherFields::new(),
        }
    }
}

impl super::Record for AgeVerification {
    const ID: Field = CUSTOMER_ID;
    const FIELDS: &'static [Field] = &[
        CUSTOMER_ID,
        VERIFIED,
        METHOD,
        VERIFIED_AT,
        DATE_OF_BIRTH,
        AGE_OVER,
    ];

    fn other(&self) -> &OtherFields {
        &self.other
    }
}

impl Serialize for AgeVerification {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = FieldWriter::new(&self.other);
        out.field(CUSTOMER_ID, &self.customer_id)?;
        out.field(VERIFIED, &self.verified)?;
        out.optional(METHOD, self.method.as_ref())?;
        out.optional(VERIFIED_AT, self.verified_at.as_ref())?;
        out.optional(DATE_OF_BIRTH, self.date_of_birth.as_ref())?;
        out.optional(AGE_OVER, self.age_over.as_ref())?;
        out.write(serializer)
    }
}

impl<'de> Deserialize<'de> for AgeVerification {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = FieldReader::read(deserializer)?;
        Ok(Self {
            customer_id: fields.required(CUSTOMER_ID)?,
            verified: fields.required(VERIFIED)?,
            method: fields.optional(METHOD),
            verified_at: fields.optional(VERIFIED_AT),
            date_of_birth: fields.optional(DATE_OF_BIRTH),
            age_over: fields.optional(AGE_OVER),
            other: fields.finish(),
        })
    }
}
