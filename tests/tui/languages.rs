//! The client's language end to end (issue 14, item 9): under a Chinese locale the real binary's
//! own words are 中文 and fit an 80×24 terminal, while every line the server sends reaches the
//! screen exactly as the protocol says; `--lang` and the config file's `language` win over
//! the locale.

use std::time::Duration;

use crate::harness::{Server, Tui, input_row, keys, status_row};

const ZH_LOCALE: &[(&str, &str)] = &[("LANG", "zh_CN.UTF-8")];

#[test]
fn a_chinese_locale_translates_the_chrome_and_leaves_the_protocol_alone() {
    let server = Server::start("chat");
    // 26 rows: the help (with the framing lab's row) is 24 rows and its title, one more than
    // 24 rows hold; this test is about every line being whole at 80 columns.
    let mut tui = Tui::spawn_with(&["--nick", "小明", &server.addr], ZH_LOCALE, 80, 26);
    tui.wait_for(
        |s| {
            let status = status_row(s);
            status.contains(" 已连接 │ 已加入 │ 小明 │ #lobby │ 1 人在线")
                && status.trim_end().ends_with("F1 帮助")
        },
        "a Chinese status bar, whole, with the hint to the help at the right edge",
    );
    let text = tui.text();
    assert!(text.contains("-- 正在连接 "), "the client's notes: {text}");
    // The server's lines are the protocol's, in the protocol's words.
    assert!(
        text.contains("*** 连接成功! you are guest-1; 1 online; /help lists the commands"),
        "{text}"
    );
    assert!(text.contains("*** guest-1 is now known as 小明"), "{text}");
    assert!(
        text.contains("── 还没有历史 ──"),
        "the client's rule: {text}"
    );

    tui.send("你好");
    tui.send(keys::ENTER);
    tui.wait_for_text("<小明> 你好");

    // The help: every line whole at 80 columns, the widest one included.
    tui.send(keys::F1);
    tui.wait_for_text("tcpchat 按键（按任意键关闭）");
    // Each line waited for: the frame may reach the terminal in more than one write.
    for line in [
        "Enter                     发送这一行",
        "Alt-1..9, Ctrl-P/N        第 N 个缓冲区；上一个 / 下一个（Alt-Left/Right）",
        "/query NICK, /close       输入命令：打开私聊缓冲区；关闭本缓冲区",
        "/lesson [N]               输入命令：动手做的 TCP 课",
        "/lab, /shutdown, /reset   输入命令：分帧实验；半关闭；以 RST 关闭",
    ] {
        tui.wait_for_text(line);
    }
    tui.send(keys::ESC);
    tui.wait_for_no_text("tcpchat 按键");
    tui.wait_for(|s| input_row(s) == ">", "an empty edit box");

    tui.send(keys::CTRL_D);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
}

#[test]
fn the_articles_echo_server_answers_in_its_own_words_under_a_chinese_locale() {
    let server = Server::start("echo");
    let mut tui = Tui::spawn_with(&["--raw", &server.addr], ZH_LOCALE, 80, 24);
    tui.wait_for_text("连接成功!");
    tui.wait_for(
        |s| status_row(s).contains(" 已连接 ") && status_row(s).contains("原始"),
        "the status bar to show a raw connection, in Chinese",
    );
    tui.send("hello");
    tui.send(keys::ENTER);
    tui.wait_for_text("第1条信息:hello");
    tui.send(keys::CTRL_D);
    assert_eq!(tui.wait_exit(Duration::from_secs(5)), 0);
}

#[test]
fn the_config_file_and_the_flag_win_over_the_locale() {
    let server = Server::start("chat");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "nick = \"alice\"\nlanguage = \"en\"\n").unwrap();
    let config = config.to_str().unwrap();

    // The file says English; the locale says Chinese: the file wins.
    let mut english = Tui::spawn_with(&["--config", config, &server.addr], ZH_LOCALE, 80, 24);
    english.wait_for(
        |s| {
            status_row(s).contains(" connected │ joined │ alice ")
                && status_row(s).contains("F1 help")
        },
        "an English status bar although LANG is Chinese",
    );
    english.send(keys::CTRL_C);
    english.wait_exit(Duration::from_secs(5));

    // The flag says Chinese; the file says English and LC_ALL says C: the flag wins.
    let c_locale = [("LC_ALL", "C")];
    let args = ["--config", config, "--lang", "zh", &server.addr];
    let mut chinese = Tui::spawn_with(&args, &c_locale, 80, 24);
    chinese.wait_for(
        |s| status_row(s).contains(" 已连接 │ 已加入 │ alice "),
        "a Chinese status bar under --lang zh",
    );
    chinese.send(keys::CTRL_C);
    chinese.wait_exit(Duration::from_secs(5));
}
