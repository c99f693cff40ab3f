/// Strict, typed reading of one table of a configuration file.
///
/// Each accessor returns nil when the key is absent (the caller applies its default) and throws a
/// `ConfigError` naming the file, line, table and key when the value has the wrong type or is out of
/// range. Every key asked for is recorded as known; `finish()` then rejects any other key, so a
/// misspelt key is an error rather than a silently ignored setting:
///
///     let config = try ConfigTable(parsing: text, file: "board/sim.toml")
///     if let recording = try config.table("recording") {
///         preEvent = try recording.int("pre_event_seconds", range: 0...120) ?? 30
///         try recording.finish()
///     }
///     try config.finish()
///
/// Not thread-safe: a table records what it was asked, so read a file from one task.
public final class ConfigTable {
    /// The file's path as given, used in every error.
    public let file: String
    /// The table's path from the root, e.g. "recording", "camera[1]"; empty for the root.
    public let keyPath: String
    /// The line of the table's header (or of its first key if dotted keys or an inline table made it);
    /// nil for the root.
    public let headerLine: Int?
    /// The parsed table, for callers that need more than the typed accessors.
    public let toml: TOMLTable
    // The table's name as its header would spell it ("recording.storage"), for messages.
    private let headerName: String
    // Elements of arrays of tables are shown as `[[camera]]`, which is how the file names them.
    private let isArrayElement: Bool
    // Keys asked for, in the order asked: listed as the known keys when an unknown one is found.
    private var known: [String] = []
    private var knownSet: Set<String> = []

    /// Parses `text` as TOML; a syntax error becomes a `ConfigError` with its line and column.
    public convenience init(parsing text: String, file: String) throws(ConfigError) {
        let table: TOMLTable
        do throws(TOMLError) {
            table = try parseTOML(text)
        } catch {
            throw ConfigError(file: file, syntax: error)
        }
        self.init(table, file: file)
    }

    /// Reads an already parsed document; `table` is taken as the root.
    public convenience init(_ table: TOMLTable, file: String) {
        self.init(table, file: file, keyPath: "", headerName: "", isArrayElement: false, headerLine: nil)
    }

    private init(
        _ table: TOMLTable, file: String, keyPath: String, headerName: String, isArrayElement: Bool, headerLine: Int?
    ) {
        self.toml = table
        self.file = file
        self.keyPath = keyPath
        self.headerName = headerName
        self.isArrayElement = isArrayElement
        self.headerLine = headerLine
    }

    /// The keys present in the table, in document order; for tables whose keys are data (e.g. a map of
    /// names). Listing them does not make them known: read each one with an accessor.
    public var keys: [String] { toml.keys }

    // MARK: - Tables

    /// The sub-table `key`, or nil when absent. It checks its own keys when its `finish()` is called.
    /// Each call returns a new reader with nothing read yet, so read a sub-table through one reader.
    public func table(_ key: String) throws(ConfigError) -> ConfigTable? {
        guard let entry = lookUp(key) else { return nil }
        guard case .table(let table) = entry.value else { throw wrongType(key, entry, expected: "a table") }
        return ConfigTable(table, file: file, keyPath: path(key), headerName: childHeaderName(key),
            isArrayElement: false, headerLine: table.position.line)
    }

    /// The array of tables `key` (`[[key]]` headers or an array of inline tables); empty when absent.
    public func tables(_ key: String) throws(ConfigError) -> [ConfigTable] {
        guard let entry = lookUp(key) else { return [] }
        guard case .array(let items) = entry.value else {
            throw wrongType(key, entry, expected: "an array of tables")
        }
        var result: [ConfigTable] = []
        for (index, item) in items.enumerated() {
            guard case .table(let table) = item else {
                throw itemError(key, entry, index, "must be a table, found \(Self.found(item))")
            }
            result.append(ConfigTable(table, file: file, keyPath: path(key) + "[\(index)]",
                headerName: childHeaderName(key), isArrayElement: true, headerLine: table.position.line))
        }
        return result
    }

    /// The raw value of `key` (recorded as known), for keys that take more than one shape, such
    /// as a string or an inline table; nil when absent. Callers report shape errors with `fail`.
    public func value(_ key: String) -> TOMLValue? {
        lookUp(key)?.value
    }

    // MARK: - Scalars

    /// The string `key`, or nil when absent.
    public func string(_ key: String) throws(ConfigError) -> String? {
        guard let entry = lookUp(key) else { return nil }
        guard case .string(let value) = entry.value else { throw wrongType(key, entry, expected: "a string") }
        return value
    }

    /// The string `key`, which must be one of `allowed`; nil when absent.
    public func string(_ key: String, oneOf allowed: [String]) throws(ConfigError) -> String? {
        guard let value = try string(key) else { return nil }
        guard allowed.contains(value) else {
            let choices = allowed.map(quotedTOMLString).joined(separator: ", ")
            throw fail(key, "= \(Self.shown(.string(value))) must be one of \(choices)")
        }
        return value
    }

    /// The integer `key`, which must lie in `range`; nil when absent. Floats are not accepted.
    public func int(_ key: String, range: ClosedRange<Int64>) throws(ConfigError) -> Int64? {
        guard let entry = lookUp(key) else { return nil }
        guard case .integer(let value) = entry.value else { throw wrongType(key, entry, expected: "an integer") }
        guard range.contains(value) else { throw fail(key, "= \(value) is out of range \(range)") }
        return value
    }

    /// The number `key`, which must be finite and lie in `range`; nil when absent. Integers are
    /// accepted and converted, so `gain = 2` reads as 2.0.
    public func double(_ key: String, range: ClosedRange<Double>) throws(ConfigError) -> Double? {
        guard let entry = lookUp(key) else { return nil }
        let value: Double
        switch entry.value {
        case .float(let float): value = float
        case .integer(let integer): value = Double(integer)
        default: throw wrongType(key, entry, expected: "a number")
        }
        guard value.isFinite, range.contains(value) else {
            throw fail(key, "= \(entry.value) is out of range \(range)")
        }
        return value
    }

    /// The boolean `key`, or nil when absent.
    public func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let entry = lookUp(key) else { return nil }
        guard case .boolean(let value) = entry.value else { throw wrongType(key, entry, expected: "a boolean") }
        return value
    }

    // MARK: - Arrays

    /// The array of strings `key`, or nil when absent.
    public func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let entry = lookUp(key) else { return nil }
        guard case .array(let items) = entry.value else {
            throw wrongType(key, entry, expected: "an array of strings")
        }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let value) = item else {
                throw itemError(key, entry, index, "must be a string, found \(Self.found(item))")
            }
            result.append(value)
        }
        return result
    }

    /// The array of integers `key`, each of which must lie in `range`; nil when absent.
    public func ints(_ key: String, range: ClosedRange<Int64>) throws(ConfigError) -> [Int64]? {
        guard let entry = lookUp(key) else { return nil }
        guard case .array(let items) = entry.value else {
            throw wrongType(key, entry, expected: "an array of integers")
        }
        var result: [Int64] = []
        for (index, item) in items.enumerated() {
            guard case .integer(let value) = item else {
                throw itemError(key, entry, index, "must be an integer, found \(Self.found(item))")
            }
            guard range.contains(value) else {
                throw itemError(key, entry, index, "= \(value) is out of range \(range)")
            }
            result.append(value)
        }
        return result
    }

    // MARK: - Checks

    /// The line where `key`'s value is, or nil when absent. Does not make the key known.
    public func line(of key: String) -> Int? {
        toml.position(of: key)?.line
    }

    /// An error about `key` for checks the accessors cannot make (e.g. one value against another).
    /// `message` continues the sentence after the table and key: `fail("post", "must be below pre")`
    /// reads "[recording] post must be below pre". The line is the key's, or the table's when the key
    /// is absent.
    public func fail(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: line(of: key) ?? headerLine, keyPath: path(key),
            message: "\(subject(key)) \(message)")
    }

    /// Rejects the first key present but never asked for, naming it and its line and listing the keys
    /// that were asked for. Call it after reading every key the table may hold; a sub-table counts as
    /// read once `table(_:)` or `tables(_:)` has returned it, and checks its own keys in its own
    /// `finish()`.
    public func finish() throws(ConfigError) {
        for entry in toml.entries where !knownSet.contains(entry.key) {
            let knownKeys = known.isEmpty ? "none" : known.map(tomlKeyText).joined(separator: ", ")
            throw ConfigError(file: file, line: entry.position.line, keyPath: path(entry.key),
                message: "unknown key \(subject(entry.key)) (known keys: \(knownKeys))")
        }
    }

    // MARK: - Helpers

    /// The entry for `key`, recording the key as known.
    private func lookUp(_ key: String) -> TOMLTable.Entry? {
        if knownSet.insert(key).inserted { known.append(key) }
        return toml.entry(key)
    }

    private func path(_ key: String) -> String {
        keyPath.isEmpty ? tomlKeyText(key) : keyPath + "." + tomlKeyText(key)
    }

    private func childHeaderName(_ key: String) -> String {
        headerName.isEmpty ? tomlKeyText(key) : headerName + "." + tomlKeyText(key)
    }

    /// "[recording] pre_event_seconds", or just the key in the root table.
    private func subject(_ key: String) -> String {
        if headerName.isEmpty { return tomlKeyText(key) }
        let label = isArrayElement ? "[[\(headerName)]]" : "[\(headerName)]"
        return label + " " + tomlKeyText(key)
    }

    private func wrongType(_ key: String, _ entry: TOMLTable.Entry, expected: String) -> ConfigError {
        ConfigError(file: file, line: entry.position.line, keyPath: path(key),
            message: "\(subject(key)) must be \(expected), found \(Self.found(entry.value))")
    }

    /// An error about item `index` of the array `key`, on the item's own line when it is known.
    private func itemError(_ key: String, _ entry: TOMLTable.Entry, _ index: Int, _ message: String) -> ConfigError {
        let line = index < entry.itemPositions.count ? entry.itemPositions[index].line : entry.position.line
        return ConfigError(file: file, line: line, keyPath: path(key) + "[\(index)]",
            message: "\(subject(key))[\(index)] \(message)")
    }

    /// "string \"high\"", "integer 3", "array of tables", "table": what was found instead.
    private static func found(_ value: TOMLValue) -> String {
        switch value {
        case .table:
            return "table"
        case .array(let items) where !items.isEmpty && items.allSatisfy({ $0.tableValue != nil }):
            return "array of tables"
        default:
            return value.typeName + " " + shown(value)
        }
    }

    /// The value as TOML, cut short so that a long string does not swamp the message.
    private static func shown(_ value: TOMLValue) -> String {
        let text = value.description
        let limit = 60
        guard text.unicodeScalars.count > limit else { return text }
        var cut = String.UnicodeScalarView()
        cut.append(contentsOf: text.unicodeScalars.prefix(limit))
        return String(cut) + "..."
    }
}
