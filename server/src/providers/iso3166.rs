//! ISO 3166-1 country codes: alpha-3 and numeric to alpha-2, for processors that send
//! a merchant country as alpha-3 (Enfuce `merchant.country`) or numeric, while the
//! canonical transaction carries alpha-2 (`merchant_country`).
//!
//! Generated from Debian's `iso-codes` package 4.15.0 (`/usr/share/iso-codes/json/
//! iso_3166-1.json`, 249 entries), plus Enfuce's documented exceptions: `ROM`
//! (Romania's pre-2002 alpha-3, still used by card schemes) and `QZZ` (Kosovo, a
//! user-assigned code; mapped to the user-assigned alpha-2 `XK`).

/// (alpha-3, alpha-2, numeric), sorted by alpha-3.
const TABLE: &[(&str, &str, u16)] = &[
    ("ABW", "AW", 533),
    ("AFG", "AF", 4),
    ("AGO", "AO", 24),
    ("AIA", "AI", 660),
    ("ALA", "AX", 248),
    ("ALB", "AL", 8),
    ("AND", "AD", 20),
    ("ARE", "AE", 784),
    ("ARG", "AR", 32),
    ("ARM", "AM", 51),
    ("ASM", "AS", 16),
    ("ATA", "AQ", 10),
    ("ATF", "TF", 260),
    ("ATG", "AG", 28),
    ("AUS", "AU", 36),
    ("AUT", "AT", 40),
    ("AZE", "AZ", 31),
    ("BDI", "BI", 108),
    ("BEL", "BE", 56),
    ("BEN", "BJ", 204),
    ("BES", "BQ", 535),
    ("BFA", "BF", 854),
    ("BGD", "BD", 50),
    ("BGR", "BG", 100),
    ("BHR", "BH", 48),
    ("BHS", "BS", 44),
    ("BIH", "BA", 70),
    ("BLM", "BL", 652),
    ("BLR", "BY", 112),
    ("BLZ", "BZ", 84),
    ("BMU", "BM", 60),
    ("BOL", "BO", 68),
    ("BRA", "BR", 76),
    ("BRB", "BB", 52),
    ("BRN", "BN", 96),
    ("BTN", "BT", 64),
    ("BVT", "BV", 74),
    ("BWA", "BW", 72),
    ("CAF", "CF", 140),
    ("CAN", "CA", 124),
    ("CCK", "CC", 166),
    ("CHE", "CH", 756),
    ("CHL", "CL", 152),
    ("CHN", "CN", 156),
    ("CIV", "CI", 384),
    ("CMR", "CM", 120),
    ("COD", "CD", 180),
    ("COG", "CG", 178),
    ("COK", "CK", 184),
    ("COL", "CO", 170),
    ("COM", "KM", 174),
    ("CPV", "CV", 132),
    ("CRI", "CR", 188),
    ("CUB", "CU", 192),
    ("CUW", "CW", 531),
    ("CXR", "CX", 162),
    ("CYM", "KY", 136),
    ("CYP", "CY", 196),
    ("CZE", "CZ", 203),
    ("DEU", "DE", 276),
    ("DJI", "DJ", 262),
    ("DMA", "DM", 212),
    ("DNK", "DK", 208),
    ("DOM", "DO", 214),
    ("DZA", "DZ", 12),
    ("ECU", "EC", 218),
    ("EGY", "EG", 818),
    ("ERI", "ER", 232),
    ("ESH", "EH", 732),
    ("ESP", "ES", 724),
    ("EST", "EE", 233),
    ("ETH", "ET", 231),
    ("FIN", "FI", 246),
    ("FJI", "FJ", 242),
    ("FLK", "FK", 238),
    ("FRA", "FR", 250),
    ("FRO", "FO", 234),
    ("FSM", "FM", 583),
    ("GAB", "GA", 266),
    ("GBR", "GB", 826),
    ("GEO", "GE", 268),
    ("GGY", "GG", 831),
    ("GHA", "GH", 288),
    ("GIB", "GI", 292),
    ("GIN", "GN", 324),
    ("GLP", "GP", 312),
    ("GMB", "GM", 270),
    ("GNB", "GW", 624),
    ("GNQ", "GQ", 226),
    ("GRC", "GR", 300),
    ("GRD", "GD", 308),
    ("GRL", "GL", 304),
    ("GTM", "GT", 320),
    ("GUF", "GF", 254),
    ("GUM", "GU", 316),
    ("GUY", "GY", 328),
    ("HKG", "HK", 344),
    ("HMD", "HM", 334),
    ("HND", "HN", 340),
    ("HRV", "HR", 191),
    ("HTI", "HT", 332),
    ("HUN", "HU", 348),
    ("IDN", "ID", 360),
    ("IMN", "IM", 833),
    ("IND", "IN", 356),
    ("IOT", "IO", 86),
    ("IRL", "IE", 372),
    ("IRN", "IR", 364),
    ("IRQ", "IQ", 368),
    ("ISL", "IS", 352),
    ("ISR", "IL", 376),
    ("ITA", "IT", 380),
    ("JAM", "JM", 388),
    ("JEY", "JE", 832),
    ("JOR", "JO", 400),
    ("JPN", "JP", 392),
    ("KAZ", "KZ", 398),
    ("KEN", "KE", 404),
    ("KGZ", "KG", 417),
    ("KHM", "KH", 116),
    ("KIR", "KI", 296),
    ("KNA", "KN", 659),
    ("KOR", "KR", 410),
    ("KWT", "KW", 414),
    ("LAO", "LA", 418),
    ("LBN", "LB", 422),
    ("LBR", "LR", 430),
    ("LBY", "LY", 434),
    ("LCA", "LC", 662),
    ("LIE", "LI", 438),
    ("LKA", "LK", 144),
    ("LSO", "LS", 426),
    ("LTU", "LT", 440),
    ("LUX", "LU", 442),
    ("LVA", "LV", 428),
    ("MAC", "MO", 446),
    ("MAF", "MF", 663),
    ("MAR", "MA", 504),
    ("MCO", "MC", 492),
    ("MDA", "MD", 498),
    ("MDG", "MG", 450),
    ("MDV", "MV", 462),
    ("MEX", "MX", 484),
    ("MHL", "MH", 584),
    ("MKD", "MK", 807),
    ("MLI", "ML", 466),
    ("MLT", "MT", 470),
    ("MMR", "MM", 104),
    ("MNE", "ME", 499),
    ("MNG", "MN", 496),
    ("MNP", "MP", 580),
    ("MOZ", "MZ", 508),
    ("MRT", "MR", 478),
    ("MSR", "MS", 500),
    ("MTQ", "MQ", 474),
    ("MUS", "MU", 480),
    ("MWI", "MW", 454),
    ("MYS", "MY", 458),
    ("MYT", "YT", 175),
    ("NAM", "NA", 516),
    ("NCL", "NC", 540),
    ("NER", "NE", 562),
    ("NFK", "NF", 574),
    ("NGA", "NG", 566),
    ("NIC", "NI", 558),
    ("NIU", "NU", 570),
    ("NLD", "NL", 528),
    ("NOR", "NO", 578),
    ("NPL", "NP", 524),
    ("NRU", "NR", 520),
    ("NZL", "NZ", 554),
    ("OMN", "OM", 512),
    ("PAK", "PK", 586),
    ("PAN", "PA", 591),
    ("PCN", "PN", 612),
    ("PER", "PE", 604),
    ("PHL", "PH", 608),
    ("PLW", "PW", 585),
    ("PNG", "PG", 598),
    ("POL", "PL", 616),
    ("PRI", "PR", 630),
    ("PRK", "KP", 408),
    ("PRT", "PT", 620),
    ("PRY", "PY", 600),
    ("PSE", "PS", 275),
    ("PYF", "PF", 258),
    ("QAT", "QA", 634),
    ("REU", "RE", 638),
    ("ROU", "RO", 642),
    ("RUS", "RU", 643),
    ("RWA", "RW", 646),
    ("SAU", "SA", 682),
    ("SDN", "SD", 729),
    ("SEN", "SN", 686),
    ("SGP", "SG", 702),
    ("SGS", "GS", 239),
    ("SHN", "SH", 654),
    ("SJM", "SJ", 744),
    ("SLB", "SB", 90),
    ("SLE", "SL", 694),
    ("SLV", "SV", 222),
    ("SMR", "SM", 674),
    ("SOM", "SO", 706),
    ("SPM", "PM", 666),
    ("SRB", "RS", 688),
    ("SSD", "SS", 728),
    ("STP", "ST", 678),
    ("SUR", "SR", 740),
    ("SVK", "SK", 703),
    ("SVN", "SI", 705),
    ("SWE", "SE", 752),
    ("SWZ", "SZ", 748),
    ("SXM", "SX", 534),
    ("SYC", "SC", 690),
    ("SYR", "SY", 760),
    ("TCA", "TC", 796),
    ("TCD", "TD", 148),
    ("TGO", "TG", 768),
    ("THA", "TH", 764),
    ("TJK", "TJ", 762),
    ("TKL", "TK", 772),
    ("TKM", "TM", 795),
    ("TLS", "TL", 626),
    ("TON", "TO", 776),
    ("TTO", "TT", 780),
    ("TUN", "TN", 788),
    ("TUR", "TR", 792),
    ("TUV", "TV", 798),
    ("TWN", "TW", 158),
    ("TZA", "TZ", 834),
    ("UGA", "UG", 800),
    ("UKR", "UA", 804),
    ("UMI", "UM", 581),
    ("URY", "UY", 858),
    ("USA", "US", 840),
    ("UZB", "UZ", 860),
    ("VAT", "VA", 336),
    ("VCT", "VC", 670),
    ("VEN", "VE", 862),
    ("VGB", "VG", 92),
    ("VIR", "VI", 850),
    ("VNM", "VN", 704),
    ("VUT", "VU", 548),
    ("WLF", "WF", 876),
    ("WSM", "WS", 882),
    ("YEM", "YE", 887),
    ("ZAF", "ZA", 710),
    ("ZMB", "ZM", 894),
    ("ZWE", "ZW", 716),
];

/// Codes outside ISO 3166-1 that Enfuce documents.
const EXCEPTIONS: &[(&str, &str)] = &[("QZZ", "XK"), ("ROM", "RO")];

/// The alpha-2 code for an alpha-3 code, a numeric code (`"246"`) or an alpha-2
/// code (returned as is when listed). `None` for anything else.
pub fn alpha2(code: &str) -> Option<&'static str> {
    let code = code.trim();
    if let Ok(n) = code.parse::<u16>() {
        return TABLE
            .iter()
            .find(|(_, _, num)| *num == n)
            .map(|(_, a2, _)| *a2);
    }
    match code.len() {
        2 => TABLE
            .iter()
            .find(|(_, a2, _)| *a2 == code)
            .map(|(_, a2, _)| *a2),
        3 => TABLE
            .binary_search_by(|(a3, _, _)| (*a3).cmp(code))
            .ok()
            .and_then(|i| TABLE.get(i))
            .map(|(_, a2, _)| *a2)
            .or_else(|| {
                EXCEPTIONS
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, a2)| *a2)
            }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(alpha2("FIN"), Some("FI"));
        assert_eq!(alpha2("SWE"), Some("SE"));
        assert_eq!(alpha2("ROU"), Some("RO"));
        assert_eq!(alpha2("ROM"), Some("RO"));
        assert_eq!(alpha2("QZZ"), Some("XK"));
        assert_eq!(alpha2("246"), Some("FI"));
        assert_eq!(alpha2("FI"), Some("FI"));
        assert_eq!(alpha2("ZZZ"), None);
        assert_eq!(alpha2("fin"), None);
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(TABLE.len(), 249);
    }
}
