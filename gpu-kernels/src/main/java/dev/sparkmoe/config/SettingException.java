package dev.sparkmoe.config;

/** A setting with a malformed or out-of-range value. */
public class SettingException extends RuntimeException {
    public SettingException(String message, Throwable cause) { super(message, cause); }
    public SettingException(String message) { super(message); }
}
