// Notification Service Extension for pushauth: a few lines around the SDK's `parsePush`.
//
// The APNs payload carries only the challenge id and the encrypted preview
// ("mutable-content": 1). The extension opens it with the AGREEMENT key (Secure Enclave,
// usable after first unlock, in the keychain access group shared with the app), no
// network, no prompt, and rewrites the notification: "Approve EUR 49.90 at Example Shop?".
// A dismiss (answered elsewhere, cancelled) removes the delivered notification. Tapping
// opens the app, which fetches and verifies the server-signed challenge with the device
// key and asks for Face ID only when the user taps Approve: the preview is never signed.
//
// Both targets: Keychain Sharing with the group below, the same enrollment state item
// (stored by the app with kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly in that group).

import PushAuth
import Security
import UserNotifications

final class NotificationService: UNNotificationServiceExtension {
    private static let sharedGroup = "TEAMID.com.example.bank.pushauth"
    private var contentHandler: ((UNNotificationContent) -> Void)?
    private var fallback: UNMutableNotificationContent?
    private var suppress = false

    override func didReceive(_ request: UNNotificationRequest,
                             withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void) {
        self.contentHandler = contentHandler
        guard let content = request.content.mutableCopy() as? UNMutableNotificationContent else {
            contentHandler(request.content)
            return
        }
        content.body = "You have a payment to confirm"  // shown if anything below fails
        fallback = content

        // Custom payload keys as strings (the `aps` dictionary is not ours).
        var data: [String: String] = [:]
        for (key, value) in request.content.userInfo {
            if let key = key as? String, let value = value as? String { data[key] = value }
        }
        Task {
            defer { self.deliver() }
            // Without a readable state (not enrolled, keychain locked before first
            // unlock) parsePush still tells a challenge from a dismiss, without preview.
            let state = SharedKeychain.load(account: "pushauth.state", group: Self.sharedGroup)
                .flatMap { try? enrollmentStateFromJson(json: $0) }
            let keyStore = SecureEnclaveKeyStore(sharedAccessGroup: Self.sharedGroup)
            switch await parsePush(data: data, state: state, keyStore: keyStore) {
            case .challenge(let challengeId, let preview):
                content.threadIdentifier = "pushauth"
                content.targetContentIdentifier = challengeId
                content.userInfo["challenge_id"] = challengeId
                if let preview = preview { content.body = "Approve \(preview.summary)?" }
            case .dismiss(let challengeId):
                // Nothing to show for a dismiss: delivering empty content hides it when
                // the extension has the com.apple.developer.usernotifications.filtering
                // entitlement (otherwise the generic text is shown).
                self.suppress = true
                UNUserNotificationCenter.current().getDeliveredNotifications { delivered in
                    let ids = delivered
                        .filter { $0.request.content.userInfo["cid"] as? String == challengeId }
                        .map { $0.request.identifier }
                    UNUserNotificationCenter.current().removeDeliveredNotifications(withIdentifiers: ids)
                }
            case .unknown:
                break  // not ours, or a newer server's kind: keep the generic text
            }
        }
    }

    override func serviceExtensionTimeWillExpire() {
        deliver()  // the system is about to show the original: show the generic text instead
    }

    private func deliver() {
        guard let handler = contentHandler, let content = fallback else { return }
        contentHandler = nil
        handler(suppress ? UNNotificationContent() : content)
    }
}

/// The enrollment state in the shared keychain group (written by the app after enroll
/// and after every state change the SDK returns).
enum SharedKeychain {
    static func load(account: String, group: String) -> String? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: "pushauth",
            kSecAttrAccount as String: account,
            kSecAttrAccessGroup as String: group,
            kSecReturnData as String: true,
        ]
        var item: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &item) == errSecSuccess,
              let data = item as? Data else { return nil }
        return String(data: data, encoding: .utf8)
    }

    static func save(_ value: String, account: String, group: String) -> Bool {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: "pushauth",
            kSecAttrAccount as String: account,
            kSecAttrAccessGroup as String: group,
        ]
        _ = SecItemDelete(query as CFDictionary)
        var item = query
        item[kSecValueData as String] = Data(value.utf8)
        item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        return SecItemAdd(item as CFDictionary, nil) == errSecSuccess
    }
}
