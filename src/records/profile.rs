//! `CustomerProfile`: the record of `customer_profile:{customerId}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fields::{Field, FieldReader, FieldWriter, OtherFields};
use super::time::RecordTime;

const CUSTOMER_ID: Field = Field {
    name: "customerId",
    expected: "a string",
};
const NAME: Field = Field {
    name: "name",
    expected: "a string",
};
const EMAIL: Field = Field {
    name: "email",
    expected: "a string",
};
const TIER: Field = Field {
    name: "tier",
    expected: "a string",
};
const MARKETING_OPT_IN: Field = Field {
    name: "marketingOptIn",
    expected: "a boolean",
};
const UPDATED_AT: Field = Field {
    name: "updatedAt",
    expected: "a time (an ISO 8601 string or epoch milliseconds)",
};

/// A customer profile. Only `customerId` is required; fields this type
/// does not know (`loyaltyPoints`, an address, ...) are kept as written.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerProfile {
    /// The customer (`customerId`).
    pub customer_id: String,
    /// Display name (`name`).
    pub name: Option<String>,
    /// Contact address (`email`).
    pub email: Option<String>,
    /// Loyalty tier, e.g. `gold` (`tier`).
    pub tier: Option<String>,
    /// Whether marketing e-mail is allowed (`marketingOptIn`).
    pub marketing_opt_in: Option<bool>,
    /// Last change (`updatedAt`).
    pub updated_at: Option<RecordTime>,
    /// Every other field, as written.
    pub other: OtherFields,
}

impl CustomerProfile {
    /// A profile with only its id.
    pub fn new(customer_id: impl Into<String>) -> Self {
        Self {
            customer_id: customer_id.into(),
            name: None,
            email: None,
            tier: None,
            marketing_opt_in: None,
            updated_at: None,
            other: OtherFields::new(),
        }
    }
}

impl super::Record for CustomerProfile {
    const ID: Field = CUSTOMER_ID;
    const FIELDS: &'static [Field] =
        &[CUSTOMER_ID, NAME, EMAIL, TIER, MARKETING_OPT_IN, UPDATED_AT];

    fn other(&self) -> &OtherFields {
        &self.other
    }
}

impl Serialize for CustomerProfile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = FieldWriter::new(&self.other);
        out.field(CUSTOMER_ID, &self.customer_id)?;
        out.optional(NAME, self.name.as_ref())?;
        out.optional(EMAIL, self.email.as_ref())?;
        out.optional(TIER, self.tier.as_ref())?;
        out.optional(MARKETING_OPT_IN, self.marketing_opt_in.as_ref())?;
        out.optional(UPDATED_AT, self.updated_at.as_ref())?;
        out.write(serializer)
    }
}

impl<'de> Deserialize<'de> for CustomerProfile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = FieldReader::read(deserializer)?;
        Ok(Self {
            customer_id: fields.required(CUSTOMER_ID)?,
            name: fields.optional(NAME),
            email: fields.optional(EMAIL),
            tier: fields.optional(TIER),
            marketing_opt_in: fields.optional(MARKETING_OPT_IN),
            updated_at: fields.optional(UPDATED_AT),
            other: fields.finish(),
        })
    }
}
