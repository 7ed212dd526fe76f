// The agreement key below API 31 (Android 8–11), where the Android Keystore cannot do
// ECDH (KeyProperties.PURPOSE_AGREE_KEY and KeyAgreement "ECDH" in "AndroidKeyStore" are
// API 31+).
//
// Fallback: a P-256 key pair generated in the app process with the platform's default
// provider; its PKCS#8 private key is encrypted (AES-256-GCM) under a Keystore AES key
// that never leaves the TEE and needs no user authentication (so a
// FirebaseMessagingService can decrypt a push while the phone is locked), and stored in
// noBackupFilesDir (never in a cloud backup). ECDH runs in-process, the decrypted private
// key is wiped right after.
//
// What this costs: on those releases the agreement key is usable by code running inside
// the app process and exists in its memory for a moment. The agreement key only keeps
// the push *preview* (amount, payee) confidential; it authorises nothing. Approvals are
// signed by the hardware-bound, biometric-gated approval key and checked against the
// server-signed challenge, which the app fetches with the device key whatever the push
// said. Issuers who refuse the trade-off set minSdk 31 (then this class is never used).

package com.example.issuer.pushauth

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import java.io.File
import java.security.KeyFactory
import java.security.KeyPairGenerator
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.security.spec.PKCS8EncodedKeySpec
import java.security.spec.X509EncodedKeySpec
import javax.crypto.Cipher
import javax.crypto.KeyAgreement
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import uniffi.pushauth.KeyStoreException

class WrappedAgreementKeys(context: Context) {
    private val dir = File(context.noBackupFilesDir, "pushauth-agreement").apply { mkdirs() }

    /** Creates the key pair under `alias`; returns the 65-byte SEC1 public key. */
    fun create(alias: String): ByteArray {
        val pair = KeyPairGenerator.getInstance("EC").apply {
            initialize(ECGenParameterSpec("secp256r1"))
        }.generateKeyPair()
        val pkcs8 = pair.private.encoded
        try {
            val cipher = Cipher.getInstance(AES_GCM)
            cipher.init(Cipher.ENCRYPT_MODE, wrappingKey(alias, create = true))
            val sealed = cipher.iv + cipher.doFinal(pkcs8) // 12-byte IV || ciphertext+tag
            file(alias).writeBytes(sealed)
        } finally {
            pkcs8.fill(0)
        }
        return AndroidKeystoreKeyStore.sec1(pair.public as ECPublicKey)
    }

    /** ECDH with the key under `alias`: the 32-byte shared x coordinate. */
    fun agree(alias: String, peerPublicKey: ByteArray): ByteArray {
        val sealed = file(alias).takeIf { it.isFile }?.readBytes() ?: throw KeyStoreException.NotFound()
        val wrapping = wrappingKey(alias, create = false) ?: throw KeyStoreException.KeyInvalidated()
        val pkcs8 = try {
            Cipher.getInstance(AES_GCM).run {
                init(Cipher.DECRYPT_MODE, wrapping, GCMParameterSpec(128, sealed, 0, IV_BYTES))
                doFinal(sealed, IV_BYTES, sealed.size - IV_BYTES)
            }
        } catch (e: Exception) {
            throw KeyStoreException.KeyInvalidated() // wrapping key replaced or file damaged
        }
        try {
            val private = KeyFactory.getInstance("EC").generatePrivate(PKCS8EncodedKeySpec(pkcs8))
            val peer = KeyFactory.getInstance("EC").generatePublic(
                X509EncodedKeySpec(AndroidKeystoreKeyStore.SPKI_P256_PREFIX + peerPublicKey),
            )
            return KeyAgreement.getInstance("ECDH").run {
                init(private)
                doPhase(peer, true)
                generateSecret()
            }
        } catch (e: Exception) {
            throw KeyStoreException.Other("key agreement failed: ${e.javaClass.simpleName}")
        } finally {
            pkcs8.fill(0)
        }
    }

    fun has(alias: String): Boolean = file(alias).isFile

    fun delete(alias: String) {
        file(alias).delete()
        val keystore = java.security.KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        if (keystore.containsAlias(wrapAlias(alias))) keystore.deleteEntry(wrapAlias(alias))
    }

    private fun wrappingKey(alias: String, create: Boolean): SecretKey? {
        val keystore = java.security.KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (keystore.getKey(wrapAlias(alias), null) as? SecretKey)?.let { return it }
        if (!create) return null
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore").run {
            init(
                KeyGenParameterSpec.Builder(wrapAlias(alias), KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                    .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                    .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                    .setKeySize(256)
                    .build(),
            )
            generateKey()
        }
    }

    private fun wrapAlias(alias: String) = "$alias.wrap"

    private fun file(alias: String) =
        File(dir, Base64.encodeToString(alias.toByteArray(), Base64.URL_SAFE or Base64.NO_WRAP or Base64.NO_PADDING))

    private companion object {
        const val AES_GCM = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
    }
}
