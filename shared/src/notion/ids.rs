//! Distinct id types, so a database id is not passed where a block id is expected by accident.
//! Each converts from `&str` / `String`, so call sites holding plain strings stay short.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }
    };
}

id_type!(
    /// A page id (also a block id: a page's children are listed under it).
    PageId
);
id_type!(
    /// A block id.
    BlockId
);
id_type!(
    /// A database (container) id.
    DatabaseId
);
id_type!(
    /// A data source id (2025-09-03+). On 2022-06-28 row queries take the database id instead.
    DataSourceId
);
id_type!(
    /// A user id.
    UserId
);
id_type!(
    /// A comment id.
    CommentId
);

impl From<PageId> for BlockId {
    fn from(id: PageId) -> Self {
        BlockId(id.0)
    }
}

impl From<&PageId> for BlockId {
    fn from(id: &PageId) -> Self {
        BlockId(id.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_and_serde() {
        let page = PageId::from("abc");
        let block: BlockId = (&page).into();
        assert_eq!(block.as_str(), "abc");
        assert_eq!(serde_json::to_string(&page).unwrap(), "\"abc\"");
        let back: PageId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back, page);
        assert_eq!(DataSourceId::from(String::from("x")).to_string(), "x");
    }
}
