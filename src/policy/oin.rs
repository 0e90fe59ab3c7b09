//! The Organisatie-identificatienummer (OIN) of the Logius OIN-stelsel: the
//! number PKIoverheid puts in a certificate's `subject.serialNumber`, and by
//! which the partner registry recognises an organisation.
//!
//! # Layout
//!
//! Twenty characters: an 8-digit **prefix** naming the register the number
//! comes from, then the **main number** (hoofdnummer, 8 or 9 positions) and a
//! **suffix** (3 or 4 positions) that pad it to 20. Source: Logius, *OIN
//! Stelsel*, chapter "Data Architectuur" (sections "Samenstelling OIN" and
//! "Prefix tabel"), `ch06_Data Architectuur.md` in
//! github.com/Logius-standaarden/OIN-Stelsel. Its prefix table:
//!
//! | prefix     | register                                          |
//! |------------|---------------------------------------------------|
//! | `00000001` | RSIN (Handelsregister)                            |
//! | `00000002` | Fi-nummer (Belastingdienst)                       |
//! | `00000003` | KvK-nummer (Handelsregister)                      |
//! | `00000004` | SubOIN register (generated, meaningless number)   |
//! | `00000005` | *free, not yet assigned*: refused here            |
//! | `00000006` | OIN main number issued by Logius                  |
//! | `00000007` | BRIN (educational institutions, DUO)              |
//! | `00000008` | foreign organisations (issued by Logius)          |
//! | `00000009` | Dezi-nummer, care providers                       |
//! | `00000010` | TRR-BD (Tijdelijk Register Restgroepen)           |
//! | `00000011` | Dezi-nummer, health insurers                      |
//! | `00000099` | test OINs (any organisation may use one)          |
//!
//! Any other prefix is refused: a new register means a new table row, made
//! on purpose, not a number that happens to pass.
//!
//! # What is checked
//!
//! - exactly 20 characters, each a digit or an upper-case ASCII letter;
//! - a prefix from the table above;
//! - after the prefix, digits only for the registers whose numbers are
//!   numeric (RSIN, Fi-nummer, KvK, SubOIN, Logius, foreign): the examples
//!   in the stelsel's "Invulling OIN in het PKIoverheidcertificaat"
//!   (`00000001002220647000` Gemeente Utrecht, `00000004194049711000`,
//!   `00000008823631400000`) are all digits;
//! - BRIN: `00000007`, `000`, the four-character BRIN code (upper-case
//!   letters and digits) and `00000`. The stelsel names the register but not
//!   where the four characters go; this layout is the one school OIN we
//!   found in use, `0000000700025BE00000` (Hanzehogeschool Groningen, BRIN
//!   25BE, in jomco/eduhub-rio-mapper's notes on DUO's RIO);
//! - Dezi, TRR-BD and test OINs: upper-case letters and digits (the
//!   stelsel allows an alphanumeric main number "depending on the register",
//!   and a test OIN may mirror any register).
//!
//! The suffix is not required to be zero: the stelsel pads new numbers with
//! `000`/`0000`, but test OINs (this project's `00000099000000000101`) use
//! it as a sequence number, and the gateway compares OINs, it issues none.
//!
//! # Case
//!
//! Lower case is **refused**, not normalised. The gateway upper-cases the
//! certificate's `subject.serialNumber` before comparing
//! (`gateway::identity`), so the canonical form is upper case; an OIN written
//! otherwise in a policy file is a typo or a copy from a source that lost the
//! distinction, and the error names the character to correct. A caller that
//! wants today's lenient reading can upper-case before calling
//! [`Oin::parse`].

use std::fmt;
use std::str::FromStr;

/// The register an OIN's prefix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OinPrefix {
    /// `00000001`: RSIN from the Handelsregister.
    Rsin,
    /// `00000002`: fiscal number (Fi-nummer) from the Belastingdienst.
    FiNummer,
    /// `00000003`: KvK-nummer from the Handelsregister.
    Kvk,
    /// `00000004`: SubOIN (organisation part, service, cooperation).
    SubOin,
    /// `00000006`: main number issued by Logius.
    Logius,
    /// `00000007`: BRIN, an educational institution.
    Brin,
    /// `00000008`: foreign organisation not in the Handelsregister.
    Buitenlands,
    /// `00000009`: Dezi-nummer of a care provider.
    DeziZorgaanbieder,
    /// `00000010`: TRR-BD (Tijdelijk Register Restgroepen).
    TrrBd,
    /// `00000011`: Dezi-nummer of a health insurer.
    DeziZorgverzekeraar,
    /// `00000099`: test OIN.
    Test,
}

impl OinPrefix {
    /// Every assigned prefix, in numeric order.
    pub const ALL: [OinPrefix; 11] = [
        Self::Rsin,
        Self::FiNummer,
        Self::Kvk,
        Self::SubOin,
        Self::Logius,
        Self::Brin,
        Self::Buitenlands,
        Self::DeziZorgaanbieder,
        Self::TrrBd,
        Self::DeziZorgverzekeraar,
        Self::Test,
    ];

    /// The eight digits.
    pub fn code(self) -> &'static str {
        match self {
            Self::Rsin => "00000001",
            Self::FiNummer => "00000002",
            Self::Kvk => "00000003",
            Self::SubOin => "00000004",
            Self::Logius => "00000006",
            Self::Brin => "00000007",
            Self::Buitenlands => "00000008",
            Self::DeziZorgaanbieder => "00000009",
            Self::TrrBd => "00000010",
            Self::DeziZorgverzekeraar => "00000011",
            Self::Test => "00000099",
        }
    }

    /// The register, as the prefix table names it.
    pub fn register(self) -> &'static str {
        match self {
            Self::Rsin => "RSIN",
            Self::FiNummer => "Fi-nummer",
            Self::Kvk => "KvK-nummer",
            Self::SubOin => "SubOIN",
            Self::Logius => "Logius OIN",
            Self::Brin => "BRIN",
            Self::Buitenlands => "foreign-organisation",
            Self::DeziZorgaanbieder => "Dezi (care provider)",
            Self::TrrBd => "TRR-BD",
            Self::DeziZorgverzekeraar => "Dezi (health insurer)",
            Self::Test => "test",
        }
    }

    /// The prefix whose code is `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// Whether this register's numbers are digits only.
    fn numeric(self) -> bool {
        matches!(
            self,
            Self::Rsin
                | Self::FiNummer
                | Self::Kvk
                | Self::SubOin
                | Self::Logius
                | Self::Buitenlands
        )
    }
}

/// Why a text is not an OIN. Positions count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OinError {
    #[error("an OIN has 20 characters, this one has {found}")]
    Length { found: usize },
    #[error(
        "character {position} (`{found}`) is lower case; an OIN is written in upper case (`{}`)",
        found.to_ascii_uppercase()
    )]
    LowerCase { position: usize, found: char },
    #[error("character {position} ({found:?}) is not a digit or an upper-case letter")]
    Character { position: usize, found: char },
    #[error(
        "prefix {prefix} names no register of the OIN-stelsel (assigned: 00000001-00000004, 00000006-00000011, 00000099)"
    )]
    UnknownPrefix { prefix: String },
    #[error("prefix 00000005 is free in the OIN-stelsel: no register has been assigned to it")]
    UnassignedPrefix,
    #[error(
        "a {register} OIN has only digits after its prefix, but character {position} is `{found}`"
    )]
    NotNumeric {
        register: &'static str,
        position: usize,
        found: char,
    },
    #[error(
        "a BRIN OIN is 00000007, 000, the four-character BRIN and 00000; `{main}` after the prefix is not"
    )]
    BrinLayout { main: String },
}

/// A valid OIN (see the module documentation for what is checked).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oin {
    text: String,
    prefix: OinPrefix,
}

/// Length of an OIN, of its prefix, and where a BRIN sits in a BRIN OIN.
const LEN: usize = 20;
const PREFIX_LEN: usize = 8;
const BRIN: std::ops::Range<usize> = 11..15;

impl Oin {
    /// Parses and validates `s` (no trimming, no case folding).
    pub fn parse(s: &str) -> Result<Self, OinError> {
        let found = s.chars().count();
        if found != LEN {
            return Err(OinError::Length { found });
        }
        for (i, c) in s.chars().enumerate() {
            let position = i + 1;
            if c.is_ascii_lowercase() {
                return Err(OinError::LowerCase { position, found: c });
            }
            if !(c.is_ascii_digit() || c.is_ascii_uppercase()) {
                return Err(OinError::Character { position, found: c });
            }
        }
        // From here on `s` is 20 ASCII characters, so byte ranges are safe.
        let (code, main) = s.split_at(PREFIX_LEN);
        let prefix = match OinPrefix::from_code(code) {
            Some(p) => p,
            None if code == "00000005" => return Err(OinError::UnassignedPrefix),
            None => {
                return Err(OinError::UnknownPrefix {
                    prefix: code.to_owned(),
                });
            }
        };
        if prefix.numeric()
            && let Some((i, c)) = main.char_indices().find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(OinError::NotNumeric {
                register: prefix.register(),
                position: PREFIX_LEN + i + 1,
                found: c,
            });
        }
        if prefix == OinPrefix::Brin && !(main.starts_with("000") && main.ends_with("00000")) {
            return Err(OinError::BrinLayout {
                main: main.to_owned(),
            });
        }
        Ok(Self {
            text: s.to_owned(),
            prefix,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The register the prefix names.
    pub fn prefix(&self) -> OinPrefix {
        self.prefix
    }

    /// The four-character BRIN code of a school's OIN.
    pub fn brin(&self) -> Option<&str> {
        (self.prefix == OinPrefix::Brin)
            .then(|| self.text.get(BRIN))
            .flatten()
    }
}

impl fmt::Display for Oin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Oin {
    type Err = OinError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Oin {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_oins_parse_with_their_register() {
        use OinPrefix as P;
        let cases: &[(&str, OinPrefix, Option<&str>)] = &[
            // Examples from the OIN-stelsel ("Invulling OIN in het PKIoverheidcertificaat").
            ("00000001002220647000", P::Rsin, None), // Gemeente Utrecht
            ("00000004114202890000", P::SubOin, None), // RVO - Bouw Utrecht Facturen
            ("00000004194049711000", P::SubOin, None), // Logius (Digilevering Integrator)
            ("00000008823631400000", P::Buitenlands, None), // Deloitte Global Tax Center
            ("00000001800866472000", P::Rsin, None), // DUO
            // A KvK-number OIN: 8-digit KvK-nummer, suffix 0000 (made up).
            ("00000003123456780000", P::Kvk, None),
            ("00000002123456789000", P::FiNummer, None),
            ("00000006529900001000", P::Logius, None),
            // School: Hanzehogeschool Groningen, BRIN 25BE.
            ("0000000700025BE00000", P::Brin, Some("25BE")),
            ("0000000700002QZ00000", P::Brin, Some("02QZ")),
            ("00000009000012345000", P::DeziZorgaanbieder, None),
            ("00000010123456789000", P::TrrBd, None),
            ("00000011000012345000", P::DeziZorgverzekeraar, None),
            // Test OINs: SURF's, and those of policies/partners.toml.
            ("00000099411824080000", P::Test, None),
            ("00000099000000000101", P::Test, None),
            ("00000099000000000701", P::Test, None),
            ("0000009900025BE00000", P::Test, None),
        ];
        for (text, prefix, brin) in cases {
            let oin = Oin::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(oin.as_str(), *text);
            assert_eq!(oin.to_string(), *text);
            assert_eq!(oin.prefix(), *prefix, "{text}");
            assert_eq!(oin.brin(), *brin, "{text}");
            assert_eq!(text.parse::<Oin>().as_ref(), Ok(&oin));
        }
    }

    #[test]
    fn invalid_oins_are_refused_with_what_is_wrong() {
        let lower = |position, found| OinError::LowerCase { position, found };
        let character = |position, found| OinError::Character { position, found };
        let not_numeric = |register, position, found| OinError::NotNumeric {
            register,
            position,
            found,
        };
        let cases: Vec<(&str, OinError)> = vec![
            ("", OinError::Length { found: 0 }),
            ("0000009900000000010", OinError::Length { found: 19 }),
            ("000000990000000001011", OinError::Length { found: 21 }),
            (" 0000009900000000010", character(1, ' ')),
            ("0000009900000000010 ", character(20, ' ')),
            ("00000099-00000000010", character(9, '-')),
            ("0000000700025be00000", lower(14, 'b')),
            ("00000099000000000é01", character(18, 'é')),
            (
                "00000000000000000101",
                OinError::UnknownPrefix {
                    prefix: "00000000".into(),
                },
            ),
            (
                "00000012000000000101",
                OinError::UnknownPrefix {
                    prefix: "00000012".into(),
                },
            ),
            (
                "0000009A000000000101",
                OinError::UnknownPrefix {
                    prefix: "0000009A".into(),
                },
            ),
            ("00000005123456789000", OinError::UnassignedPrefix),
            ("00000003A23456780000", not_numeric("KvK-nummer", 9, 'A')),
            ("0000000112345678900X", not_numeric("RSIN", 20, 'X')),
            ("00000004ABCDEFGHI000", not_numeric("SubOIN", 9, 'A')),
            (
                "0000000725BE00000000",
                OinError::BrinLayout {
                    main: "25BE00000000".into(),
                },
            ),
            (
                "0000000700025BE00001",
                OinError::BrinLayout {
                    main: "00025BE00001".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Oin::parse(text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn every_error_says_what_is_wrong() {
        let msg = |s: &str| Oin::parse(s).map(|_| ()).unwrap_err().to_string();
        assert_eq!(msg("123"), "an OIN has 20 characters, this one has 3");
        assert_eq!(
            msg("0000000700025be00000"),
            "character 14 (`b`) is lower case; an OIN is written in upper case (`B`)"
        );
        assert!(msg("00000005123456789000").contains("00000005 is free"));
        assert!(msg("00000012000000000101").contains("prefix 00000012 names no register"));
        assert!(msg("00000003A23456780000").contains("a KvK-nummer OIN has only digits"));
    }

    #[test]
    fn the_prefix_table_round_trips() {
        for p in OinPrefix::ALL {
            assert_eq!(OinPrefix::from_code(p.code()), Some(p));
        }
        assert_eq!(OinPrefix::from_code("00000005"), None);
    }
}
