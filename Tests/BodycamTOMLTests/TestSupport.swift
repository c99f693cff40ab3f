import BodycamTOML

/// The value at a dotted path of plain key parts, descending through tables only.
func value(_ table: TOMLTable, _ path: String...) -> TOMLValue? {
    var current = table
    for (index, key) in path.enumerated() {
        guard let next = current[key] else { return nil }
        if index == path.count - 1 { return next }
        guard case .table(let child) = next else { return nil }
        current = child
    }
    return .table(current)
}

/// The table at a dotted path of plain key parts.
func table(_ table: TOMLTable, _ path: String...) -> TOMLTable? {
    var current = table
    for key in path {
        guard case .table(let child)? = current[key] else { return nil }
        current = child
    }
    return current
}

/// The error `parseTOML` throws for `text`, or nil when it parses.
func syntaxError(_ text: String) -> TOMLError? {
    do throws(TOMLError) {
        _ = try parseTOML(text)
        return nil
    } catch {
        return error
    }
}

/// The error a reading step throws, or nil when it succeeds.
func configError(_ body: () throws(ConfigError) -> Void) -> ConfigError? {
    do throws(ConfigError) {
        try body()
        return nil
    } catch {
        return error
    }
}

/// A table built from key/value pairs, for comparing with parsed tables (positions do not matter).
func makeTable(_ pairs: KeyValuePairs<String, TOMLValue>) -> TOMLTable {
    var table = TOMLTable()
    for (key, value) in pairs {
        table.set(key, to: value, at: TOMLPosition(line: 1, column: 1))
    }
    return table
}
