//! Request generation, driven by the descriptors: proptest strategies for every field kind and the
//! values they draw from; also rendering messages as text and collecting their string fields by name.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use prost::Message;
use prost::bytes::Bytes;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value};

use crate::MAX_DEPTH;

/// How a request is generated: `plausible` requests draw every value from valid-looking ones, so
/// that they pass the first checks and reach the deeper ones; arbitrary requests mix in near misses,
/// hostile text, limits and random values.
#[derive(Clone, Copy)]
pub(crate) struct Shape<'a> {
    pub(crate) plausible: bool,
    /// Every field name of the request, the values of field-mask paths.
    pub(crate) field_names: &'a [String],
    pub(crate) fixtures: &'a Fixtures,
}

/// The ids of the round's reservation and hold (see `Suite::ensure_fixtures`), and of the first
/// round's reservation, which every method may change, so that methods meet what others did to it.
pub(crate) struct Fixtures {
    pub(crate) reservation: String,
    pub(crate) lasting_reservation: String,
    pub(crate) hold: String,
}

/// Valid values, then near misses, for fields of these names (matched as the whole name, a
/// `_`-separated prefix or suffix). The ids are those of `Suite::ensure_fixtures`, and new ones.
const DOMAIN_VALUES: &[(&str, &[&str], &[&str])] = &[
    ("country", &["US", "DE"], &["KP", "ZZ", "us", "USA"]),
    ("eccn", &["EAR99", "5A992.c"], &["9Z999", "ear99"]),
    ("tax_code", &["4323.310_A", "4512.100"], &["0000"]),
    ("hs_code", &["1006.20.4025", "1006.20"], &["10.06"]),
    ("weight_unit", &["oz", "kg"], &["stone"]),
    ("managed_fulfillment", &["DRGlobalFulfillment"], &["Other"]),
    ("manufacturer_id", &["20013"], &["99999"]),
    ("part_number", &["DEMOPARTNUMBER2", "100-440-0.750-3434-A"], &[]),
    ("currency", &["USD", "EUR"], &["XXX", "usd"]),
    ("warehouse_id", &["w"], &["w2"]),
    ("inventory_item_id", &["a", "sku-m"], &["b"]),
    ("hold_id", &[], &["h2"]),
    ("reservation_id", &[], &["r2"]),
    ("image", &["https://example.com/p.png"], &["not a url", "javascript:alert(1)"]),
    ("url", &["https://example.com/p"], &["ftp://x", "http://"]),
    ("page_token", &[""], &["bm9wZQ", "!!!", "0"]),
    ("service", &["catalog", "reservation"], &["inventory"]),
    ("id", &["new-1", "new-2"], &["a", "w", "sku-1", "sku-m"]),
];

/// Ids of the fixtures and codes that are valid somewhere, for any string field.
const COMMON_VALUES: &[&str] = &["a", "w", "sku-1", "sku-m", "US", "EAR99", "x"];

/// Text that has broken services: NUL, control characters, non-ASCII, text beyond every limit.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "a\0b",
        "\0",
        "tab\there",
        "new\nline",
        "\u{7f}\u{1b}[2J",
        "ünïcødé-☃",
        "🦀",
        "\u{202e}rtl",
        " ",
        " a ",
        "a/b",
        "../..",
        "'; DROP TABLE skus; --",
        "%s%n{}",
        "KP",
        "ZZ",
    ]
    .map(str::to_owned)
    .into();
    values.extend(["x".repeat(256), "x".repeat(5000), "é".repeat(300)]);
    values
}

/// The valid values and the near misses for the field `name` of the message `parent`. An `id`
/// names a record of the kind its message is about (`GetWarehouseRequest.id` a warehouse). The
/// reservations' ids are also near misses for a hold: closing a reservation's hold behind the
/// Reservation service's back.
fn domain_values(name: &str, parent: &str, fixtures: &Fixtures) -> (Vec<String>, Vec<String>) {
    let singular = match name.strip_suffix("_ids") {
        Some(prefix) => format!("{prefix}_id"),
        None if name == "ids" => "id".to_owned(),
        None => name.to_owned(),
    };
    let names = |key: &str| {
        singular == key || singular.ends_with(&format!("_{key}")) || singular.starts_with(&format!("{key}_"))
    };
    let owned = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
    let (mut valid, mut near) = DOMAIN_VALUES
        .iter()
        .find(|(key, _, _)| names(key))
        .map(|(_, valid, near)| (owned(valid), owned(near)))
        .unwrap_or_default();
    if singular == "id" {
        let records = [
            ("FulfillmentOrder", owned(&[])),
            ("Reservation", vec![fixtures.reservation.clone(), fixtures.lasting_reservation.clone()]),
            ("Hold", vec![fixtures.hold.clone()]),
            ("Warehouse", owned(&["w"])),
            ("InventoryItem", owned(&["a", "sku-m"])),
            ("Sku", owned(&["sku-1", "sku-m"])),
        ];
        if let Some((_, ids)) = records.into_iter().find(|(record, _)| parent.contains(record)) {
            // The record's existing ids, and new ones for creating.
            valid.extend(ids);
        }
    }
    if names("reservation_id") {
        valid.extend([fixtures.reservation.clone(), fixtures.lasting_reservation.clone()]);
    }
    if names("hold_id") {
        valid.push(fixtures.hold.clone());
        near.extend([fixtures.reservation.clone(), fixtures.lasting_reservation.clone()]);
    }
    (valid, near)
}

/// The names of every field reachable from `message`, as written in the contracts and in JSON.
pub(crate) fn field_names(message: &MessageDescriptor) -> Vec<String> {
    fn visit(message: &MessageDescriptor, seen: &mut BTreeSet<String>, names: &mut BTreeSet<String>) {
        if !seen.insert(message.full_name().to_owned()) {
            return;
        }
        for field in message.fields() {
            names.insert(field.name().to_owned());
            names.insert(field.json_name().to_owned());
            if let Kind::Message(inner) = field.kind() {
                visit(&inner, seen, names);
            }
        }
    }
    let mut names = BTreeSet::new();
    visit(message, &mut BTreeSet::new(), &mut names);
    names.into_iter().collect()
}

fn string_strategy(name: &str, parent: &str, shape: Shape<'_>) -> BoxedStrategy<String> {
    let (mut valid, near) = domain_values(name, parent, shape.fixtures);
    if name == "paths" {
        valid = shape.field_names.to_vec();
    }
    let mut common: Vec<String> = COMMON_VALUES.iter().map(|v| (*v).to_owned()).collect();
    let fixtures = shape.fixtures;
    common.extend([&fixtures.reservation, &fixtures.lasting_reservation, &fixtures.hold].map(String::clone));
    if shape.plausible {
        return select(if valid.is_empty() { common } else { valid }).boxed();
    }
    let mut arms: Vec<(u32, BoxedStrategy<String>)> = vec![(1, Just(String::new()).boxed())];
    if !valid.is_empty() {
        arms.push((6, select(valid).boxed()));
    }
    if !near.is_empty() {
        arms.push((2, select(near).boxed()));
    }
    if name == "paths" {
        arms.push((1, select(vec!["nonexistent".to_owned(), "*".to_owned(), "sku.name".to_owned()]).boxed()));
    }
    arms.push((2, select(common).boxed()));
    arms.push((2, select(hostile_values()).boxed()));
    arms.push((1, "[A-Za-z0-9_-]{1,12}".boxed()));
    arms.push((1, "(?s).{0,16}".boxed()));
    Union::new_weighted(arms).boxed()
}

/// Integers for a field: small ones, limits, and anything. Fields about expiry get none that lapse
/// during the run (nothing from 1 to 3,599 seconds), since a reservation or hold that expires
/// changes the state by itself.
fn integer_strategy(name: &str, shape: Shape<'_>, min: i64, max: i64) -> BoxedStrategy<i64> {
    let expiry = name.starts_with("expire");
    let small: Vec<i64> = if expiry { vec![0, 3 * 3600, 86_400] } else { vec![0, 1, 2, 3, 5, 10] };
    if shape.plausible {
        return select(small[1..].to_vec()).boxed();
    }
    let mut odd = vec![-1, -100, 101, 500, 604_800, 604_801, min, max, i64::from(i32::MAX) + 1, 1 << 53];
    odd.retain(|v| (min..=max).contains(v) && !(expiry && (1..3600).contains(v)));
    let any = (min..=max)
        .prop_filter("a value that does not lapse during the run", move |v| !(expiry && (1..3600).contains(v)));
    prop_oneof![4 => select(small), 2 => select(odd), 1 => any].boxed()
}

fn f64_strategy(shape: Shape<'_>) -> BoxedStrategy<f64> {
    let usual = vec![0.0, 1.5, 5.95, 8.88, 100.0];
    if shape.plausible {
        return select(usual).boxed();
    }
    prop_oneof![
        3 => select(usual),
        1 => select(vec![-1.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN_POSITIVE, 1e-320]),
        1 => any::<f64>(),
    ]
    .boxed()
}

/// Timestamps: valid ones later than anything this run can reach (see [`integer_strategy`]), and
/// unless plausible, past ones and ones out of range (before the year 1, after 9999, nanos outside
/// 0 to 999,999,999).
fn timestamp_strategy(message: MessageDescriptor, shape: Shape<'_>) -> BoxedStrategy<DynamicMessage> {
    let now = now_seconds();
    let future = now + 3 * 3600..now + 30 * 86_400;
    let (seconds, nanos) = if shape.plausible {
        (future.boxed(), (0..1_000_000_000i32).boxed())
    } else {
        (
            prop_oneof![
                3 => future,
                1 => now - 365 * 86_400..now - 3600,
                1 => select(vec![0, -1, i64::MAX, i64::MIN, -62_135_596_801, 253_402_300_800]),
            ]
            .boxed(),
            prop_oneof![3 => 0..1_000_000_000i32, 1 => select(vec![-1, 1_000_000_000, i32::MAX, i32::MIN])].boxed(),
        )
    };
    (seconds, nanos)
        .prop_map(move |(seconds, nanos)| {
            let mut timestamp = DynamicMessage::new(message.clone());
            timestamp.set_field_by_name("seconds", Value::I64(seconds));
            timestamp.set_field_by_name("nanos", Value::I32(nanos));
            timestamp
        })
        .boxed()
}

/// A message of type `message` with each field set or not, to a value of its kind.
pub(crate) fn message_strategy(
    message: MessageDescriptor,
    depth: usize,
    shape: Shape<'_>,
) -> BoxedStrategy<DynamicMessage> {
    if message.full_name() == "google.protobuf.Timestamp" {
        return timestamp_strategy(message, shape);
    }
    if depth >= MAX_DEPTH {
        return Just(DynamicMessage::new(message)).boxed();
    }
    let fields: Vec<BoxedStrategy<Option<(FieldDescriptor, Value)>>> = message
        .fields()
        .map(|field| {
            let key = field.clone();
            // A plausible request sets every field but leaves an explicitly optional one unset as
            // often as not.
            let optional = field.supports_presence() && !matches!(field.kind(), Kind::Message(_));
            let value = field_strategy(&field, depth, shape);
            let value = match (shape.plausible, optional) {
                (true, false) => value.prop_map(Some).boxed(),
                (true, true) => proptest::option::weighted(0.5, value).boxed(),
                (false, _) => proptest::option::weighted(0.6, value).boxed(),
            };
            value.prop_map(move |value| value.map(|value| (key.clone(), value))).boxed()
        })
        .collect();
    fields
        .prop_map(move |values| {
            let mut generated = DynamicMessage::new(message.clone());
            for (field, value) in values.into_iter().flatten() {
                generated.set_field(&field, value);
            }
            generated
        })
        .boxed()
}

fn field_strategy(field: &FieldDescriptor, depth: usize, shape: Shape<'_>) -> BoxedStrategy<Value> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else { unreachable!("a map field's kind is its entry message") };
        let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let keys = single_value(&key, depth, shape).prop_filter_map("a map key", |key| match key {
            Value::String(s) => Some(MapKey::String(s)),
            Value::I32(n) => Some(MapKey::I32(n)),
            Value::I64(n) => Some(MapKey::I64(n)),
            Value::U32(n) => Some(MapKey::U32(n)),
            Value::U64(n) => Some(MapKey::U64(n)),
            Value::Bool(b) => Some(MapKey::Bool(b)),
            _ => None,
        });
        return proptest::collection::hash_map(keys, single_value(&value, depth, shape), 0..4)
            .prop_map(Value::Map)
            .boxed();
    }
    if field.is_list() {
        return proptest::collection::vec(single_value(field, depth, shape), 0..4).prop_map(Value::List).boxed();
    }
    single_value(field, depth, shape)
}

fn single_value(field: &FieldDescriptor, depth: usize, shape: Shape<'_>) -> BoxedStrategy<Value> {
    let name = field.name();
    let (min32, max32) = (i64::from(i32::MIN), i64::from(i32::MAX));
    match field.kind() {
        Kind::Double => f64_strategy(shape).prop_map(Value::F64).boxed(),
        Kind::Float => f64_strategy(shape).prop_map(|v| Value::F32(v as f32)).boxed(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            integer_strategy(name, shape, min32, max32).prop_map(|v| Value::I32(v as i32)).boxed()
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            integer_strategy(name, shape, i64::MIN, i64::MAX).prop_map(Value::I64).boxed()
        }
        Kind::Uint32 | Kind::Fixed32 => {
            integer_strategy(name, shape, 0, i64::from(u32::MAX)).prop_map(|v| Value::U32(v as u32)).boxed()
        }
        Kind::Uint64 | Kind::Fixed64 => {
            integer_strategy(name, shape, 0, i64::MAX).prop_map(|v| Value::U64(v as u64)).boxed()
        }
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::String => string_strategy(name, field.parent_message().name(), shape).prop_map(Value::String).boxed(),
        Kind::Bytes => proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::Bytes(Bytes::from(b))).boxed(),
        Kind::Enum(enumeration) => {
            let known: Vec<i32> = enumeration.values().map(|v| v.number()).collect();
            if shape.plausible {
                return select(known).prop_map(Value::EnumNumber).boxed();
            }
            prop_oneof![4 => select(known), 1 => select(vec![-1, 99, i32::MAX, i32::MIN])]
                .prop_map(Value::EnumNumber)
                .boxed()
        }
        Kind::Message(message) => message_strategy(message, depth + 1, shape).prop_map(Value::Message).boxed(),
    }
}

/// The encoding of a well-formed message, damaged: cut short, a byte flipped, noise inserted or
/// appended (unknown fields, wrong wire types, broken lengths, invalid UTF-8).
pub(crate) fn mutated(message: BoxedStrategy<DynamicMessage>) -> impl Strategy<Value = Vec<u8>> {
    let noise = proptest::collection::vec(any::<u8>(), 1..8);
    (message, 0u8..4, any::<Index>(), noise).prop_map(|(message, how, at, noise)| {
        let mut bytes = message.encode_to_vec();
        let at = at.index(bytes.len() + 1);
        match how {
            0 => bytes.truncate(at),
            1 if at < bytes.len() => bytes[at] ^= noise[0] | 1,
            2 => {
                bytes.splice(at..at, noise);
            }
            _ => bytes.extend(noise),
        }
        bytes
    })
}

/// Every string value of a field called `name`, anywhere in `message`.
pub(crate) fn strings_named(message: &DynamicMessage, name: &str, out: &mut Vec<String>) {
    fn visit(value: &Value, named: bool, name: &str, out: &mut Vec<String>) {
        match value {
            Value::String(s) if named => out.push(s.clone()),
            Value::Message(m) => strings_named(m, name, out),
            Value::List(values) => values.iter().for_each(|v| visit(v, named, name, out)),
            Value::Map(entries) => entries.values().for_each(|v| visit(v, false, name, out)),
            _ => {}
        }
    }
    for (field, value) in message.fields() {
        visit(value, field.name() == name, name, out);
    }
}

/// A message in a text form close to protobuf's, every string escaped and in full.
pub(crate) fn render(message: &DynamicMessage) -> String {
    fn value(v: &Value) -> String {
        match v {
            Value::String(s) => format!("{s:?}"),
            Value::Bytes(b) => format!("0x{}", hex(b)),
            Value::Message(m) => render(m),
            Value::List(items) => format!("[{}]", items.iter().map(value).collect::<Vec<_>>().join(", ")),
            Value::Map(entries) => {
                let mut rendered: Vec<String> = entries.iter().map(|(k, v)| format!("{k:?}: {}", value(v))).collect();
                rendered.sort();
                format!("{{{}}}", rendered.join(", "))
            }
            other => format!("{other:?}"),
        }
    }
    let fields: Vec<String> = message.fields().map(|(field, v)| format!("{}: {}", field.name(), value(v))).collect();
    format!("{} {{{}}}", message.descriptor().name(), fields.join(", "))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}
