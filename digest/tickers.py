"""Recognise stock tickers and coins in headlines: $NVDA, (NYSE:BRK.B), Nvidia, Bitcoin.

The symbol table (``digest/data/symbols.txt``) is ours, kept by hand. Four signals, from
strongest to weakest: a cashtag, an exchange prefix, a company or coin name, and a bare
upper-case symbol. Symbols that are also ordinary words (ALL, ONE, LINK, SOL, IT, A, ARE,
NOW, COIN...) count only through the first three.

Names are written many ways: a name matches in another capitalisation when it has a shape
of its own (an inner capital or sign: "Blackrock", "Paypal", "AT&T") or the headline is set
in capitals; a plain capitalised name in lower case ("apple") is a word, not the company. A
name may carry a possessive or be glued to a prefix ("ex-Google", "AT&T-Time Warner"), and a
coin may be plural ("bitcoins"). Names that are also everyday words or names (Strategy,
Circle, Pepe) count only in a headline about crypto. A cashtag spelling a currency ($COP,
the Colombian peso) is no ticker by itself. Pure: no I/O after the table is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

SYMBOLS_FILE = Path(str(files("digest") / "data" / "symbols.txt"))

#: Symbols that are also words or common abbreviations: a bare upper-case "NOW" or "ICE" in a
#: headline is far more often the word than the company, so these need a stronger signal.
AMBIGUOUS = frozenset(
    """A ALL ARE IT ONE LINK SOL NOW COIN ON GO KEY LOW CAT DOW MA SO ED BE CAN FAST COST TECH
    WELL PEG HAS IP IR L O T V C D F J K W ICE TAP PM ES GD GL HD HE HOLD HUM IEX JBL LH LW
    MET MO MOS NI NUE OKE PH PSA RF SNA STE SW TEL TT TXT UAL WAT WY ZS NEAR FLOW SAND HYPE SKY
    RAY TON DOT UNI LEO APT CAKE COMP ENS RUNE OP ZK W SEI NEO EOS GALA MANA WIF BONK JUP
    ICP STX APP ARM DASH DELL EA EL EX EXE FI FOX GEN HAL IQV K LIN MAR MCO MS NVR OTIS PAYC POOL
    ROL SOLV SPG TEAM TRV URI VST WM WST KR AMP BR BX CB CF CI CL CME COO CSX DG DE DAY DOC DIS
    EG ETN EW FE HII J MMM PAYX PFG PG PKG PNR REG ROK SJM SO STT TER TPL TRGP TRMB UDR VRSN ZBRA
    AI FLR SEI GRT QNT XDC KAS TAO ENA PENGU VIRTUAL TRUMP ARB AAVE PEPE FET TIA INJ RENDER
    DAI USDE ONDO IMX ATOM ALGO XYZ AA BB DB TD TM UL RY SAN RACE SNAP SHOP SPOT PINS VALE
    NIO""".split()
)

#: ISO 4217 codes of currencies that headlines quote; "$COP" is as often the peso as
#: ConocoPhillips, so such a cashtag needs the company's name beside it.
CURRENCIES = frozenset(
    """USD EUR JPY GBP CAD AUD CHF CNY CNH HKD NZD SGD MXN BRL INR KRW TRY ZAR RUB SEK NOK DKK
    PLN ILS THB IDR PHP TWD ARS CLP COP PEN VND AED SAR NGN EGP KES UAH CZK HUF""".split()
)
#: Aliases that are also everyday words or common names: they name the company or coin only
#: in a headline about crypto (one that names a coin or speaks of crypto).
CRYPTO_CONTEXT_NAMES = frozenset({"Strategy", "Circle", "Pepe"})
_CRYPTO_WORDS = re.compile(
    r"(?i)\b(?:crypto\w*|bitcoin\w*|stablecoin\w*|tokens?|tokeni[sz]\w*|blockchains?)\b"
)

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,6}(?:\.[A-Za-z])?)\b")
_EXCHANGE = re.compile(
    r"\b(?:NASDAQ|Nasdaq|NYSE(?:\s?American|\s?Arca)?|AMEX|NYSEARCA|CBOE|Cboe)\s*:\s*"
    r"([A-Z]{1,5}(?:\.[A-Z])?)\b"
)
#: Coin names that are no ordinary word, so written in lower case they still name the coin
#: ("bitcoin miners"); other names count only capitalised.
LOWER_CASE_NAMES = frozenset(
    """Bitcoin Ethereum Solana Dogecoin Litecoin Cardano Polkadot Chainlink Monero Toncoin
    Tether Hyperliquid Arbitrum Filecoin Uniswap Aave Kaspa Celestia""".split()
)

_BARE = re.compile(r"(?<![\w$.])([A-Z][A-Z0-9]{1,5}(?:\.[A-Z])?)(?![\w])")


@dataclass(frozen=True, slots=True)
class Symbol:
    symbol: str
    kind: str  # "stock" or "coin"
    name: str


@dataclass(frozen=True)
class SymbolTable:
    symbols: dict[str, Symbol]
    by_alias: dict[str, str]
    alias_pattern: re.Pattern[str]
    lower_case_pattern: re.Pattern[str]
    #: Aliases by their lower-case form, to look up a match in another capitalisation.
    by_folded: dict[str, str]

    def kind(self, symbol: str) -> str | None:
        found = self.symbols.get(symbol)
        return found.kind if found else None


@lru_cache(maxsize=1)
def symbol_table(path: Path = SYMBOLS_FILE) -> SymbolTable:
    """The bundled symbol table, loaded once."""
    symbols: dict[str, Symbol] = {}
    by_alias: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, symbol, name, aliases = line.split("|")
        # A stock and a coin may share a symbol (STX): the stock keeps it, as listed first.
        symbols.setdefault(symbol, Symbol(symbol, kind, name))
        for alias in filter(None, aliases.split(";")):
            by_alias.setdefault(alias, symbol)
    # Longest first, so "Bitcoin Cash" wins over "Bitcoin" and "Ethereum Classic" over "Ethereum".
    alternatives = sorted(by_alias, key=len, reverse=True)
    # A prefix glued by a hyphen ("ex-Google") or a possessive ("Moody's", curly or straight)
    # still names the company; a plural "s" is checked per match (coins only).
    pattern = re.compile(
        r"(?<![\w&.])(" + _trie_pattern(alternatives) + r")((?:['’]s)|s)?(?![\w&])",
        re.IGNORECASE,
    )
    lower = re.compile(
        r"(?<![\w-])("
        + "|".join(sorted(LOWER_CASE_NAMES, key=len, reverse=True))
        + r")s?(?![\w-])",
        re.IGNORECASE,
    )
    folded: dict[str, str] = {}
    for alias in alternatives:
        folded.setdefault(alias.casefold(), alias)
    return SymbolTable(symbols, by_alias, pattern, lower, folded)


_Tree = dict[str, "_Tree"]


def _trie_pattern(words: list[str]) -> str:
    """One regular expression for ``words`` (case-folded), shaped as their prefix tree.

    Python's ``re`` tries the branches of a flat alternation one by one at every position;
    a tree rejects a position after a letter or two. Longer words win, as the greedy
    optional tail is tried before the word that ends earlier.
    """
    tree: _Tree = {}
    for word in words:
        node = tree
        for char in word.casefold():
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict) -> str:  # type: ignore[type-arg]
        ends = "" in node
        branches = [
            re.escape(char) + pattern(child) for char, child in sorted(node.items()) if char
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return f"(?:{body})?"
        return body

    return pattern(tree)


def find_tickers(text: str, table: SymbolTable | None = None) -> list[str]:
    """The symbols ``text`` mentions, in order of first mention, each once."""
    table = table or symbol_table()
    found: dict[int, str] = {}

    def add(position: int, symbol: str) -> None:
        if symbol not in found.values():
            found[position] = symbol

    for match in _CASHTAG.finditer(text):
        symbol = match[1].upper()
        if symbol in table.symbols and symbol not in CURRENCIES:
            add(match.start(), symbol)
    for match in _EXCHANGE.finditer(text):
        add(match.start(1), match[1])
    named: set[int] = set()
    shouting = _shouting(text, table)
    crypto = None
    for match in table.alias_pattern.finditer(text.replace("’", "'")):
        alias = _alias(table, match[1], shouting)
        if alias is None:
            continue
        symbol = table.by_alias[alias]
        if match[2] == "s" and table.kind(symbol) != "coin":
            continue  # "Apples" is not Apple; "bitcoins" are Bitcoin
        if alias in CRYPTO_CONTEXT_NAMES:
            if crypto is None:
                crypto = _about_crypto(text, table)
            if not crypto:
                continue
        add(match.start(), symbol)
        named.update(range(match.start(), match.end()))
    for match in table.lower_case_pattern.finditer(text):
        if match.start() not in named:  # "Bitcoin" inside "Bitcoin Cash" is not Bitcoin
            add(match.start(), table.by_alias[match[1].capitalize()])
    if not shouting:
        for match in _BARE.finditer(text):
            symbol = match[1]
            if match.start() in named:  # "GE" of "GE Vernova" is not GE
                continue
            if symbol in table.symbols and symbol not in AMBIGUOUS:
                add(match.start(), symbol)
    return [found[position] for position in sorted(found)]


def _alias(table: SymbolTable, written: str, shouting: bool) -> str | None:
    """The alias a match stands for, or None when its capitalisation makes it a word.

    The table's own spelling always counts. Another spelling counts for a name with a shape
    of its own (an inner capital, a digit or a sign: BlackRock as "Blackrock", AT&T as "At&t")
    written with a capital, for a name written in mixed case no word takes ("AmEx" for Amex),
    or for any name in a headline set in capitals ("APPLE").
    """
    if written in table.by_alias:
        return written
    alias = table.by_folded.get(written.casefold())
    if alias is None:
        return None
    shaped = any(char.isupper() or not char.isalpha() for char in alias[1:])
    mixed = any(char.isupper() for char in written[1:]) and any(c.islower() for c in written)
    if shouting or mixed or (shaped and written[:1].isupper()):
        return alias
    return None


def _about_crypto(text: str, table: SymbolTable) -> bool:
    """True for a headline that names a coin or speaks of crypto."""
    if _CRYPTO_WORDS.search(text):
        return True
    for match in table.alias_pattern.finditer(text):
        alias = table.by_alias.get(match[1])
        if (
            alias is not None
            and match[1] not in CRYPTO_CONTEXT_NAMES
            and table.kind(alias) == "coin"
        ):
            return True
    return any(table.kind(match[1]) == "coin" for match in _BARE.finditer(text))


def _shouting(text: str, table: SymbolTable) -> bool:
    """True for a headline set in capitals, where a capitalised word says nothing."""
    words = [word for word in re.findall(r"[A-Za-z]+", text) if word not in table.symbols]
    letters = "".join(words)
    return bool(letters) and sum(char.isupper() for char in letters) > 0.6 * len(letters)
