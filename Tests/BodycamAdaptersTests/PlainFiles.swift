import Foundation

extension FileManager {
    /// `createFile` without Foundation's atomic write, which on Linux leaves an empty
    /// `TemporaryDirectory.*` folder in /tmp for every file it writes.
    @discardableResult
    func createPlainFile(atPath path: String, contents: Data?) -> Bool {
        (try? (contents ?? Data()).write(to: URL(fileURLWithPath: path))) != nil
    }
}
