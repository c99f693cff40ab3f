/// A TOML table: keys in the order the document defines them, each with its value and where it appears.
///
/// Lookup by key is a dictionary lookup; iteration follows `entries`, which is document order.
/// Equality compares keys and values only, regardless of order or position, as TOML does.
public struct TOMLTable: Sendable, Equatable, CustomStringConvertible {
    /// One key of a table with its value and where the value appears.
    public struct Entry: Sendable {
        /// The key, with quotes and escapes resolved (one part of a dotted key).
        public var key: String
        /// The value.
        public var value: TOMLValue
        /// Where the value begins. For a sub-table this is the table's own `position` (its header,
        /// or the first dotted key that created it); for an array of tables, its first `[[header]]`.
        public var position: TOMLPosition
        /// For an array value, where each of its items begins (for an array of tables, each
        /// `[[header]]`); empty for other values. Items of arrays nested in arrays are not tracked.
        public var itemPositions: [TOMLPosition]

        /// Creates an entry.
        public init(key: String, value: TOMLValue, position: TOMLPosition, itemPositions: [TOMLPosition] = []) {
            self.key = key
            self.value = value
            self.position = position
            self.itemPositions = itemPositions
        }
    }

    /// Where the table is defined: its `[header]` or `[[header]]`, the `{` of an inline table, or the
    /// first dotted key that created it. The document's root table is at 1:1.
    public var position: TOMLPosition
    /// The entries in document order.
    public private(set) var entries: [Entry] = []
    // Index into `entries`, so that lookups and duplicate checks stay O(1) in large documents.
    private var slots: [String: Int] = [:]

    /// Creates an empty table defined at `position`.
    public init(position: TOMLPosition = TOMLPosition(line: 1, column: 1)) {
        self.position = position
    }

    /// The number of keys.
    public var count: Int { entries.count }

    /// Whether the table has no keys.
    public var isEmpty: Bool { entries.isEmpty }

    /// The keys in document order.
    public var keys: [String] { entries.map(\.key) }

    /// The value for `key`, or nil when the table has no such key.
    public subscript(key: String) -> TOMLValue? {
        entry(key)?.value
    }

    /// The entry for `key`, with its position, or nil when the table has no such key.
    public func entry(_ key: String) -> Entry? {
        guard let slot = slots[key] else { return nil }
        return entries[slot]
    }

    /// Where the value of `key` begins, or nil when the table has no such key.
    public func position(of key: String) -> TOMLPosition? {
        entry(key)?.position
    }

    /// Sets `key` to `value`: replaces the entry in place if the key exists, else appends it.
    public mutating func set(
        _ key: String, to value: TOMLValue, at position: TOMLPosition, itemPositions: [TOMLPosition] = []
    ) {
        let entry = Entry(key: key, value: value, position: position, itemPositions: itemPositions)
        if let slot = slots[key] {
            entries[slot] = entry
        } else {
            slots[key] = entries.count
            entries.append(entry)
        }
    }

    /// Same keys with equal values; order and positions do not matter.
    public static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool {
        guard lhs.entries.count == rhs.entries.count else { return false }
        for entry in lhs.entries {
            guard let other = rhs[entry.key], other == entry.value else { return false }
        }
        return true
    }

    /// The table as a TOML inline table, e.g. `{ name = "front", fps = 30 }`.
    public var description: String {
        if entries.isEmpty { return "{}" }
        let body = entries.map { tomlKeyText($0.key) + " = " + $0.value.description }
        return "{ " + body.joined(separator: ", ") + " }"
    }
}
