"""The answers KIS gives when it refuses something, as the simulator sends them."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Gateway / business messages (msg_cd -> msg1). Codes not listed get a generic text.
MESSAGES: dict[str, str] = {
    "EGW00201": "초당 거래건수를 초과하였습니다.",
    "EGW00121": "유효하지 않은 token 입니다.",
    "EGW00122": "token 값을 찾을 수 없습니다.",
    "EGW00123": "기간이 만료된 token 입니다.",
    "EGW00103": "유효하지 않은 AppKey입니다.",
    "EGW00105": "유효하지 않은 AppSecret입니다.",
    "EGW00133": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
    "EGW02004": "실전투자 TR 이 아닙니다.",
    "EGW02006": "모의투자 TR 이 아닙니다.",
    "OPSQ0001": "시스템 처리 중 오류가 발생하였습니다.",
    "OPSQ0002": "없는 서비스 코드 입니다",
    "OPSQ2000": "ERROR : INPUT INVALID_CHECK_ACNO",
    "APBK0013": "주문 전송 완료 되었습니다.",
    "APBK0952": "주문가능금액을 초과 했습니다",
    "APBK0400": "주문 가능한 수량을 초과하였습니다.",
    "APBK0656": "해당 종목정보가 없습니다.",
    "APBK0506": "호가 단위 오류입니다.",
    "APBK0919": "주문단가가 상/하한가를 벗어났습니다.",
    "APBK0507": "시장가 주문은 단가를 0으로 입력하십시오.",
    "APBK0510": "주문수량이 0 이하입니다.",
    "APBK0655": "매매거래 정지 종목입니다.",
    "APBK0918": "정정/취소할 수 있는 수량이 없습니다.",
    "APBK1001": "시뮬레이터에서 지원하지 않는 주문구분입니다.",
    "APBK0001": "장운영시간이 아닙니다.",
    "90000000": "모의투자에서는 해당업무가 제공되지 않습니다.",
    "KIOK0560": "조회할 내용이 없습니다",
}

# Success answers of order-cash / order-rvsecncl per environment (msg_cd, msg1).
ORDER_OK_REAL = ("APBK0013", "주문 전송 완료 되었습니다.")
ORDER_OK_PAPER_BUY = ("40600000", "모의투자 매수주문이 완료 되었습니다.")
ORDER_OK_PAPER_SELL = ("40610000", "모의투자 매도주문이 완료 되었습니다.")
ORDER_OK_PAPER_RVSECNCL = ("40660000", "모의투자 정정/취소주문이 완료 되었습니다.")
INQUIRY_OK_REAL = ("KIOK0000", "정상처리 되었습니다.")
INQUIRY_OK_PAPER = ("20310000", "모의투자 조회가 완료되었습니다.")

_CODE_RE = re.compile(r"^(?:[A-Z]{2,6}\d{4,8}|\d{8})$")


def looks_like_code(text: str) -> bool:
    return bool(_CODE_RE.match(text))


def message_for(code: str) -> str:
    return MESSAGES.get(code, f"시뮬레이터 오류 응답입니다 ({code}).")


@dataclass
class KisRefusal(Exception):
    """A refusal with KIS's body `{"rt_cd", "msg_cd", "msg1"}` and an HTTP status."""

    msg_cd: str
    msg1: str = ""
    status: int = 200
    rt_cd: str = "1"

    def __post_init__(self) -> None:
        if not self.msg1:
            self.msg1 = message_for(self.msg_cd)

    def body(self) -> dict[str, str]:
        return {"rt_cd": self.rt_cd, "msg_cd": self.msg_cd, "msg1": self.msg1}

    def __str__(self) -> str:
        return f"{self.msg_cd} {self.msg1}"


def gateway(code: str) -> KisRefusal:
    """Gateway-level refusals (EGW…) arrive as HTTP 500 with a JSON body."""
    return KisRefusal(code, status=500)


def bad_input(name: str) -> KisRefusal:
    """KIS's input check failure: rt_cd 2, OPSQ2001, `ERROR : INPUT INVALID_CHECK_<NAME>`."""
    return KisRefusal("OPSQ2001", f"ERROR : INPUT INVALID_CHECK_{name}", status=500, rt_cd="2")


def wrong_account() -> KisRefusal:
    return KisRefusal("OPSQ2000", status=500, rt_cd="2")


def refused(code: str) -> KisRefusal:
    """Business refusal: HTTP 200, rt_cd 1, APBK… code."""
    return KisRefusal(code)


@dataclass
class AuthRefusal(Exception):
    """An /oauth2 refusal: HTTP 403 `{"error_code", "error_description"}`."""

    error_code: str
    status: int = 403

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "error_description": message_for(self.error_code)}

    def __str__(self) -> str:
        return self.error_code
